# GPU image: Python 3.11, PyTorch 2.13.0 (CUDA 13.0) and this project.
#   docker build -t virnucpro-trainer .
#   docker run --gpus all -v /path/to/data:/workspace/data -v "$PWD/outputs":/workspace/outputs \
#     virnucpro-trainer                          # or: ... virnucpro-trainer python train.py seed=3
# The full Python image, not -slim: it has the C compiler that torch.compile's kernels need.
FROM python:3.11

WORKDIR /workspace
# torch 2.13.0: pyproject.toml's floor, the release CI tests (docs/development.md#which-torch-ci-tests).
# PyPI's Linux build brings its own CUDA 13.0 libraries; the host needs an NVIDIA driver for CUDA 13
# (R580 or newer), which `--gpus all` lends the container. The former base image's torch 2.5.1
# could not save a run's training state.
RUN pip install --no-cache-dir torch==2.13.0
COPY pyproject.toml README.md train.py evaluate.py ./
COPY src ./src
COPY conf ./conf
# torch is in already, so this adds only the other packages: the launchers and the Optuna sweeper
# (docs/sweeps.md) and the experiment trackers (docs/trackers.md; MLflow adds about 0.4 GB).
RUN pip install --no-cache-dir -e ".[sweep,tensorboard,mlflow,wandb]"

# data.root defaults to data/data_merge, i.e. /workspace/data/data_merge here.
VOLUME ["/workspace/data", "/workspace/outputs"]
CMD ["python", "train.py"]
