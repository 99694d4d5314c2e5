#!/usr/bin/python3
"""gen_csv.py OUT MB: a deterministic CSV of about MB megabytes with the
shapes real extracts have: ints, decimals, quoted text with commas and
quotes, booleans, dates, empty (NULL) fields."""
import sys

out, mb = sys.argv[1], float(sys.argv[2])
target = int(mb * 1000 * 1000)
names = ["Acme, Inc.", "Globex", 'The "Best" Shop', "Initech", "Umbrella Corp", "Stark Industries", "Wayne Ent."]
size = 0
i = 0
with open(out, "w", newline="") as f:
    f.write("order_id,customer,amount,quantity,paid,order_date,note\n")
    while size < target:
        rows = []
        for _ in range(10000):
            i += 1
            n = names[i % len(names)]
            if "," in n or '"' in n:
                n = '"' + n.replace('"', '""') + '"'
            note = "" if i % 5 else "rush"
            rows.append("%d,%s,%d.%02d,%d,%s,2026-%02d-%02d,%s\n" % (
                i, n, i % 100000, i % 100, i % 17, "true" if i % 3 else "false", i % 12 + 1, i % 28 + 1, note))
        chunk = "".join(rows)
        f.write(chunk)
        size += len(chunk)
