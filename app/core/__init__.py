"""The engine: models, preprocessing, data, training and inference. Never imports Qt."""
