"""Frozen-encoder evaluation (kNN, linear probe) of pre-trained backbones."""
from .representation import (evaluate_features, evaluate_model,
                             extract_features, fashion_mnist_splits,
                             knn_accuracy, knn_topk_accuracies,
                             linear_probe_accuracy, pool_features)
from .logistic import (center_and_normalize_rows, fit_logistic_regression,
                       logistic_regression_accuracy)

__all__ = [
    'evaluate_features', 'evaluate_model', 'extract_features',
    'fashion_mnist_splits', 'knn_accuracy', 'knn_topk_accuracies',
    'linear_probe_accuracy', 'pool_features', 'center_and_normalize_rows',
    'fit_logistic_regression', 'logistic_regression_accuracy'
]
