# E2B template for osirisd: the base image plus the self-contained worker
# (copy build/bin/osiris-worker-static here as osiris-worker first; see README.md).
FROM e2bdev/code-interpreter:latest
COPY osiris-worker /usr/local/bin/osiris-worker
RUN chmod 0755 /usr/local/bin/osiris-worker && mkdir -p /tmp/osiris
