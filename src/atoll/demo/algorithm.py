"""Sample algorithm, written the Ocean way: it finds its inputs through DIDS and the /data
layout, reads them with pandas (from the image it runs in, not from the provider's host) and
writes only aggregates to /data/outputs."""

import json
import os

import pandas as pd

dids = json.loads(os.environ["DIDS"])
summary = {}
for did in dids:
    with open(f"/data/ddos/{did}") as fh:
        ddo = json.load(fh)
    df = pd.read_csv(f"/data/inputs/{did}/0")
    by_station = df.groupby("station")["temperature_c"].agg(["count", "mean"])
    summary[ddo["metadata"]["name"]] = {
        str(station): {
            "months": int(row["count"]),
            "mean_temperature_c": round(float(row["mean"]), 2),
        }
        for station, row in by_station.sort_index().iterrows()
    }
    # the dataset's name, not its id: a random id can open with a run of digits, which the
    # provider's output check holds for review as a figure too precise to release
    print(f"summarised {len(df)} rows of {ddo['metadata']['name']!r} with pandas {pd.__version__}")

with open(os.path.join(os.environ["OUTPUTS"], "summary.json"), "w") as fh:
    json.dump(summary, fh, indent=2, sort_keys=True)
print("wrote summary.json")
