# GPU image: the official PyTorch CUDA runtime plus this project.
#   docker build -t virnucpro-trainer .
#   docker run --gpus all -v /path/to/data:/workspace/data -v "$PWD/outputs":/workspace/outputs \
#     virnucpro-trainer                          # or: ... virnucpro-trainer python train.py seed=3
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

WORKDIR /workspace
COPY pyproject.toml README.md train.py evaluate.py ./
COPY src ./src
COPY conf ./conf
# torch is already in the image and satisfies torch>=2.2, so this adds only the other packages:
# the launchers and the Optuna sweeper (docs/sweeps.md) and the experiment trackers
# (docs/trackers.md; MLflow adds about 0.4 GB).
RUN pip install --no-cache-dir -e ".[sweep,tensorboard,mlflow,wandb]"

# data.root defaults to data/data_merge, i.e. /workspace/data/data_merge here.
VOLUME ["/workspace/data", "/workspace/outputs"]
CMD ["python", "train.py"]
