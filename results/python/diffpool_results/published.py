"""Published accuracies the plots draw as reference lines: Ying et al. 2018, Table 1 and Errica et
al. 2020 (DiffPool under their fair protocol). Accuracy in %.

The same figures are in results/report.cpp (kYing2018, kErrica2020), which `diffpool report` prints
beside our rows; test_results_python checks that both tables hold the same entries.
"""

YING_SOURCE = "Ying et al. 2018, Table 1"
ERRICA_SOURCE = "Errica et al. 2020"

# Ying et al. 2018, Table 1: (dataset, variant) -> accuracy % (their protocol; no standard deviation given).
YING_2018_TABLE1 = {
    ("ENZYMES", "graphsage"): 54.25, ("DD", "graphsage"): 75.42, ("REDDIT-MULTI-12K", "graphsage"): 42.24,
    ("COLLAB", "graphsage"): 68.25, ("PROTEINS", "graphsage"): 70.48,
    ("ENZYMES", "diffpool-det"): 58.33, ("DD", "diffpool-det"): 75.47, ("REDDIT-MULTI-12K", "diffpool-det"): 46.18,
    ("COLLAB", "diffpool-det"): 82.13, ("PROTEINS", "diffpool-det"): 75.62,
    ("ENZYMES", "diffpool-nolp"): 61.95, ("DD", "diffpool-nolp"): 79.98, ("REDDIT-MULTI-12K", "diffpool-nolp"): 46.65,
    ("COLLAB", "diffpool-nolp"): 75.58, ("PROTEINS", "diffpool-nolp"): 76.22,
    ("ENZYMES", "diffpool"): 62.53, ("DD", "diffpool"): 80.64, ("REDDIT-MULTI-12K", "diffpool"): 47.08,
    ("COLLAB", "diffpool"): 75.48, ("PROTEINS", "diffpool"): 76.25,
}

# Errica et al. 2020, DiffPool under their protocol: (dataset, variant) -> (mean %, std %) over
# the outer folds. COLLAB used degree features there.
ERRICA_2020 = {
    ("ENZYMES", "diffpool"): (59.5, 5.6), ("DD", "diffpool"): (75.0, 3.5), ("PROTEINS", "diffpool"): (73.7, 3.5),
    ("NCI1", "diffpool"): (76.9, 1.9), ("COLLAB", "diffpool"): (68.9, 2.0), ("IMDB-BINARY", "diffpool"): (68.4, 3.3),
    ("IMDB-MULTI", "diffpool"): (45.6, 3.4), ("REDDIT-BINARY", "diffpool"): (89.1, 1.6),
}

# The order of the study figure and of `diffpool report`: the paper's Table 1 datasets first, then
# the others Errica et al. evaluated; variants in the order of the paper's Table 1 rows.
DATASET_ORDER = ("ENZYMES", "DD", "REDDIT-MULTI-12K", "COLLAB", "PROTEINS", "NCI1", "IMDB-BINARY", "IMDB-MULTI",
                 "REDDIT-BINARY")
VARIANT_ORDER = ("graphsage", "diffpool-det", "diffpool-nolp", "diffpool")
VARIANT_NAMES = {"graphsage": "GraphSAGE", "diffpool-det": "DIFFPOOL-DET", "diffpool-nolp": "DIFFPOOL-NOLP",
                 "diffpool": "DIFFPOOL"}


def canonical_dataset(name):
    """TU dataset name as the tables spell it (upper case, '-' for '_', D&D as DD)."""
    upper = str(name).upper().replace("_", "-")
    return "DD" if upper == "D&D" else upper


def canonical_variant(name):
    return str(name).lower().replace("_", "-")


def ying_2018(dataset, variant):
    """The paper's Table 1 accuracy (%) of this dataset and variant, or None."""
    return YING_2018_TABLE1.get((canonical_dataset(dataset), canonical_variant(variant)))


def errica_2020(dataset, variant):
    """Errica et al.'s (mean %, std %) of this dataset and variant, or None."""
    return ERRICA_2020.get((canonical_dataset(dataset), canonical_variant(variant)))


def main():
    """Prints both tables as CSV lines `source,dataset,variant,mean,std` (std empty: not given)."""
    for (dataset, variant), mean in YING_2018_TABLE1.items():
        print(f"ying2018,{dataset},{variant},{mean},")
    for (dataset, variant), (mean, std) in ERRICA_2020.items():
        print(f"errica2020,{dataset},{variant},{mean},{std}")


if __name__ == "__main__":
    main()
