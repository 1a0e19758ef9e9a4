"""What a model's outputs become for a user: the :class:`~kronos.forecasting.forecast.Forecast` of sample
paths, the :class:`~kronos.forecasting.predictor.KronosPredictor` that turns DataFrames into forecasts,
conformal calibration, long-format panels and their sharded runs, plots, anomaly scores, embeddings and
synthetic bars."""
