"""The confusion matrix of a published experiment (confusion.py, save_confusion), from its run
folders before their job files go:

    /usr/bin/python3 -m diffpool_results.confusion_csv runs/fold0 runs/fold1 ... --csv confusion.csv

Each folder gives the matrix of the evaluations its figure comes from (confusion_matrix); the
folders are runs of disjoint folds of one experiment (its shards), so their matrices add up.
"""
import argparse
import sys

from .confusion import confusion_matrix, save_confusion, sum_confusions


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m diffpool_results.confusion_csv",
        description="The confusion matrix of the evaluations an experiment's figure comes from, added up over "
                    "run folders of disjoint folds (the shards of one experiment), written as CSV.")
    parser.add_argument("folders", nargs="+", help="experiment output folders with job files")
    parser.add_argument("--csv", required=True, help="the CSV to write (confusion.csv of a published folder)")
    args = parser.parse_args(argv)
    parts = []
    for folder in args.folders:
        c = confusion_matrix(folder)
        if c is None:
            sys.exit(f"{folder}: no stored test predictions (no job files that hold them, and no confusion.csv)")
        if c.skipped:
            sys.exit(f"{folder}: {len(c.skipped)} jobs without stored test predictions")
        parts.append(c)
    protocols = sorted({c.description.split(":")[0] for c in parts})
    jobs = sum(len(c.jobs) for c in parts)
    total = sum_confusions(parts, description=f"{', '.join(protocols)}: {jobs} jobs from {len(parts)} run folders")
    save_confusion(total, args.csv)
    print(f"{args.csv}: {total.graphs} test graphs, accuracy {100 * total.accuracy:.2f}%, "
          f"{len(total.jobs)} jobs from {len(parts)} folders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
