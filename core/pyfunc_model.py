"""The file MLflow logs as the code of every suite model ("models from code": no pickled object in the
model; the class is imported from the installed suite when the model loads). See `core.serving`."""

from mlflow.models import set_model

from core.serving import AttnPyfuncModel

set_model(AttnPyfuncModel())
