"""Sample algorithm, written the Ocean way: it finds its inputs through DIDS and the
/data layout, and writes only aggregates to /data/outputs."""

import csv
import json
import os
from collections import defaultdict

dids = json.loads(os.environ["DIDS"])
summary = {}
for did in dids:
    with open(f"/data/ddos/{did}") as fh:
        ddo = json.load(fh)
    by_station = defaultdict(list)
    with open(f"/data/inputs/{did}/0", newline="") as fh:
        for row in csv.DictReader(fh):
            by_station[row["station"]].append(float(row["temperature_c"]))
    summary[ddo["metadata"]["name"]] = {
        station: {"months": len(temps), "mean_temperature_c": round(sum(temps) / len(temps), 2)}
        for station, temps in sorted(by_station.items())
    }
    print(f"summarised {sum(len(t) for t in by_station.values())} rows of {did[:20]}…")

with open(os.path.join(os.environ["OUTPUTS"], "summary.json"), "w") as fh:
    json.dump(summary, fh, indent=2, sort_keys=True)
print("wrote summary.json")
