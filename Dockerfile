# The claws toolkit in an image whose entry point is `claws` (README "Docker").
#   docker build -t claws .
#     torch as pinned in the Makefile, the CUDA build from PyPI: runs on the CPU too, and on a GPU
#     host with `docker run --gpus all ...`; the larger image.
#   docker build -t claws-cpu --build-arg TORCH_SPEC="torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cpu" .
#     PyTorch's CPU-only wheels: no NVIDIA libraries, a far smaller image.
# BASE_IMAGE names another base with Python 3.11 and its venv module (a local stand-in: docker/).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# The unprivileged user every command runs as (uid 1000, the first user of most Linux hosts), so
# what it writes to a mounted folder is not owned by root; `docker run --user "$(id -u):$(id -g)"`
# runs as you instead. /out, the default command's output, is writable by either.
RUN useradd --create-home --uid 1000 --user-group claws && mkdir --mode=1777 /out

# The dependencies in their own layer, before any source is copied: only setup.cfg (its
# install_requires) and TORCH_SPEC decide it, so a code edit reuses it instead of downloading
# several GB again. Keep TORCH_SPEC's default equal to the Makefile's pinned pair.
ARG TORCH_SPEC="torch==2.14.1 torchvision==0.29.1"
ENV PATH=/opt/venv/bin:$PATH
COPY setup.cfg /tmp/claws/setup.cfg
RUN python3 -m venv /opt/venv \
    && pip install --no-cache-dir --upgrade pip 'setuptools>=68' wheel \
    && pip install --no-cache-dir $TORCH_SPEC \
    && python -c "import configparser; c = configparser.ConfigParser(); c.read('/tmp/claws/setup.cfg'); print(c['options']['install_requires'])" \
       > /tmp/claws/requirements.txt \
    && pip install --no-cache-dir -r /tmp/claws/requirements.txt \
    && rm -rf /tmp/claws

# The package alone, installed (not editable) into the venv from its sources, which are then
# removed: the image holds what a user runs, no tests, benchmarks or source tree.
COPY setup.cfg pyproject.toml README.md /tmp/claws/
COPY data /tmp/claws/data
COPY extract /tmp/claws/extract
COPY model /tmp/claws/model
COPY pipeline /tmp/claws/pipeline
RUN pip install --no-cache-dir --no-deps --no-build-isolation /tmp/claws && rm -rf /tmp/claws

# matplotlib's cache in a folder any --user can write (the home of an unknown uid is /).
ENV MPLCONFIGDIR=/tmp/matplotlib
USER claws
# Everything a command writes must go to a mounted folder, or it is lost with the container.
# The default command writes the demo to /out, a volume: mount a host folder there to keep it,
#   mkdir -p demo_out && docker run --user "$(id -u):$(id -g)" -v "$PWD/demo_out:/out" claws
# Weights and data are mounted by the user, never downloaded: e.g.
#   docker run -v /data:/data claws extract ucf-crime --root /data/UCF \
#       --train-list /data/Anomaly_Train.txt --weights /data/c3d.pickle --out /data/feats/ucf
WORKDIR /out
VOLUME ["/out"]
ENTRYPOINT ["claws"]
CMD ["demo", "--out", "/out"]
