"""Training and evaluation: corpus readers and downloads, cached extraction,
augmentation, speaker-grouped splits, PyTorch networks and their training loop, the logistic
head, Optuna search, metrics, model cards, and the export of a trained model to a bundle
(``export``) that ``ser.serving`` reads. Needs the ``train`` extra.
"""
