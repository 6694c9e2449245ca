"""Frozen-encoder evaluation (kNN, linear probe) of pre-trained backbones."""
from .representation import (evaluate_features, evaluate_model,
                             extract_features, fashion_mnist_splits,
                             knn_accuracy, linear_probe_accuracy,
                             pool_features)

__all__ = [
    'evaluate_features', 'evaluate_model', 'extract_features',
    'fashion_mnist_splits', 'knn_accuracy', 'linear_probe_accuracy',
    'pool_features'
]
