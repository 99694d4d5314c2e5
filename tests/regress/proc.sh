# proc.sh: process helpers shared by the regress cases (lib.sh) and the
# benchmarks (bench/lib.sh), sourced by both.

# descendants PID: the pids below PID, depth first, one a line.
descendants() {
	local c
	for c in $(pgrep -P "$1"); do
		echo "$c"
		descendants "$c"
	done
}
