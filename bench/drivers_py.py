#!/usr/bin/python3
"""drivers_py.py: the Python equivalents bench/drivers.sh times beside our
drivers, the way Osiris' Python drivers do the job. Each prints one line
`times_us T1 T2 ...` (wall time of the work only, interpreter start and
imports excluded), one per repetition.

  drivers_py.py mysql-read  REPS HOST PORT USER PASSWORD DB QUERY
  drivers_py.py pg-read     REPS HOST PORT USER PASSWORD DB QUERY
  drivers_py.py pg-upsert   REPS HOST PORT USER PASSWORD DB SRC_TABLE TABLE
  drivers_py.py pg-rowdict  REPS HOST PORT USER PASSWORD DB SRC_TABLE TABLE MAXROWS
(the rows to write are read from SRC_TABLE into a DataFrame first, untimed)
  drivers_py.py gql         REPS URL TOKEN FIRST
A PASSWORD or TOKEN of "-" is taken from $DRIVERS_PY_SECRET (kept out of ps)."""

import json
import os
import sys
import time
import urllib.parse
import urllib.request


def timed(reps, fn, before=None):
    out = []
    for _ in range(reps):
        if before:
            before()
        t0 = time.perf_counter()
        fn()
        out.append(int((time.perf_counter() - t0) * 1e6))
    print("times_us " + " ".join(str(t) for t in out))


def read_sql(url, query):
    import pandas as pd
    import sqlalchemy

    def run():
        # Osiris' extractors build an engine per step
        eng = sqlalchemy.create_engine(url)
        with eng.connect() as c:
            df = pd.read_sql(sqlalchemy.text(query), c)
        eng.dispose()
        assert len(df) > 0
    return run


def pg_conn(a):
    import psycopg2
    return psycopg2.connect(host=a[0], port=int(a[1]), user=a[2], password=a[3], dbname=a[4])


def main():
    mode, reps, a = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    a = [os.environ.get("DRIVERS_PY_SECRET", "") if x == "-" else x for x in a]
    if mode in ("mysql-read", "pg-read"):
        drv = "mysql+pymysql" if mode == "mysql-read" else "postgresql+psycopg2"
        url = "%s://%s:%s@%s:%s/%s" % (drv, urllib.parse.quote(a[2]), urllib.parse.quote(a[3]), a[0], a[1], a[4])
        timed(reps, read_sql(url, a[5]))
    elif mode in ("pg-upsert", "pg-rowdict"):
        import pandas as pd
        from psycopg2.extras import execute_values
        src, table = a[5], a[6]
        conn = pg_conn(a)
        limit = " LIMIT %d" % int(a[7]) if mode == "pg-rowdict" else ""
        with conn.cursor() as cur:
            cur.execute("SELECT * FROM %s ORDER BY 1%s" % (src, limit))
            df = pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])
        conn.commit()
        cols = list(df.columns)
        upd = ", ".join("%s = EXCLUDED.%s" % (c, c) for c in cols[1:])

        def truncate():
            with conn.cursor() as cur:
                cur.execute("TRUNCATE %s" % table)
            conn.commit()

        def upsert():
            rows = list(df.itertuples(index=False, name=None))
            with conn.cursor() as cur:
                execute_values(cur, "INSERT INTO %s (%s) VALUES %%s ON CONFLICT (%s) DO UPDATE SET %s"
                               % (table, ", ".join(cols), cols[0], upd), rows, page_size=1000)
            conn.commit()

        def rowdict():
            # Osiris-style: iterrows into dicts, one INSERT per row
            sql = "INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) DO UPDATE SET %s" % (
                table, ", ".join(cols), ", ".join("%%(%s)s" % c for c in cols), cols[0], upd)
            with conn.cursor() as cur:
                for _, r in df.iterrows():
                    cur.execute(sql, {c: (None if pd.isna(v) else v.item() if hasattr(v, "item") else v)
                                      for c, v in r.to_dict().items()})
            conn.commit()
        timed(reps, upsert if mode == "pg-upsert" else rowdict, truncate)
        conn.close()
    elif mode == "gql":
        import pandas as pd
        url, token, first = a[0], a[1], int(a[2])
        q = ("query($first: Int, $after: String) { items(first: $first, after: $after) { edges { cursor node "
             "{ id name price qty active tags meta { color size } } } pageInfo { hasNextPage endCursor } } }")

        def fetch():
            rows, after = [], None
            while True:
                body = json.dumps({"query": q, "variables": {"first": first, "after": after}}).encode()
                req = urllib.request.Request(url, body, {"Content-Type": "application/json",
                                                         "Authorization": "Bearer " + token})
                d = json.load(urllib.request.urlopen(req, timeout=60))
                rows += d["data"]["items"]["edges"]
                pi = d["data"]["items"]["pageInfo"]
                if not pi["hasNextPage"]:
                    break
                after = pi["endCursor"]
            df = pd.json_normalize(rows)
            assert len(df) > 0
        timed(reps, fetch)
    else:
        sys.exit("drivers_py.py: unknown mode " + mode)


main()
