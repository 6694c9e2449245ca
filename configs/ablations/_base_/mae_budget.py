# Shared budget of the MAE-family grids: the MAE demo
# (configs/demo/mae_fashion-mnist.py) at half its length, 400 iterations of
# 128 images (warm-up 50, cosine to 400).
common = {
    'train_cfg.max_iters': 400,
    'param_scheduler.0.end': 50,
    'param_scheduler.1.begin': 50,
    'param_scheduler.1.T_max': 350,
    'param_scheduler.1.end': 400,
}
