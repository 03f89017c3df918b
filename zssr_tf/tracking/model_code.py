"""The code MLflow runs to build the pyfunc of a logged ZSSR model (MLflow's "models from code":
the model is this file plus its artifacts, no pickled Python object). See `tracking.model`."""

import mlflow

from zssr_tf.tracking.model import ZSSRModel

mlflow.models.set_model(ZSSRModel())
