# CPU or GPU image of the claws toolkit. On a GPU host run with `docker run --gpus all ...`;
# the torch wheel pinned in the Makefile is a CUDA build that also runs on the CPU.
FROM python:3.11-slim

WORKDIR /opt/claws
COPY setup.cfg pyproject.toml Makefile README.md ./
COPY data ./data
COPY extract ./extract
COPY model ./model
COPY pipeline ./pipeline
COPY tests ./tests
COPY bench ./bench

RUN apt-get update && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/* \
    && make setup VENV=/opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Everything a command writes must go to a mounted folder, or it is lost with the container.
# The default command writes the demo to /out, a volume: mount a host folder there to keep it,
#   docker run -v "$PWD/demo_out:/out" claws
# Weights and data are mounted by the user, never downloaded: e.g.
#   docker run -v /data:/data claws extract ucf-crime --root /data/UCF \
#       --train-list /data/Anomaly_Train.txt --weights /data/c3d.pickle --out /data/feats/ucf
VOLUME ["/out"]
ENTRYPOINT ["claws"]
CMD ["demo", "--out", "/out"]
