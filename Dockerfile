# syntax=docker/dockerfile:1
# Images of the MHE prediction service.
#   docker build -t mhe-serve .                        CPU image (the default: the last stage, "runtime")
#   docker build --target gpu -t mhe-serve:gpu .       NVIDIA GPU image: CUDA (tfjs-node-gpu, libtensorflow 2.9.1),
#                                                      else WebGPU over Vulkan (webgpu + tfjs-backend-webgpu)
#   docker build --target webgpu -t mhe-serve:webgpu . GPU image without CUDA: WebGPU over Vulkan only (any driver
#                                                      with a Vulkan ICD; small, like the CPU image)
# All listen on 0.0.0.0:8080, run as uid 1000, serve MHE_MODEL=/models/demo (baked in; mount your own
# bundles over /models) and report health from /health/ready. See the "Deploy" section of README.md.

ARG NODE_IMAGE=node:20-bookworm
ARG NODE_SLIM_IMAGE=node:20-bookworm-slim
# libtensorflow 2.9.1 (what @tensorflow/tfjs-node-gpu 4.22 downloads) is built against CUDA 11.2 and cuDNN 8.1.
# Any CUDA 11.x runtime >= 11.2 with cuDNN 8.x >= 8.1 also loads it (same library sonames), e.g.
# --build-arg CUDA_IMAGE=nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04. CUDA 12 images do not.
ARG CUDA_IMAGE=nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04

# ---- build: compile TypeScript to dist/ ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Optional deps are the tfjs-node packages (they download libtensorflow); the compiler needs neither them
# nor any install script.
RUN npm ci --omit=optional --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build
# The native addons (native/dense.cc, the Dense kernel; native/scan.cc, the JSON rows' reader; this image has g++):
# for the CPU image, whose slim Debian has the same libraries. --required: fail the build rather than ship an image
# that runs the slower paths unnoticed.
COPY native/dense.cc native/scan.cc native/build.mjs ./native/
RUN node native/build.mjs --required

# ---- node20: the Node 20 runtime (slim), also copied into the CUDA images below ----
FROM ${NODE_SLIM_IMAGE} AS node20

# ---- prod-deps: production dependencies only (CPU: the wasm backend, no tfjs-node) ----
FROM node20 AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
# Source maps are ~70 MB of the tfjs packages (of ~160 MB installed) and are never read at run time.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
 && find node_modules -name '*.map' -delete \
 && npm cache clean --force

# ---- gpu-deps: production dependencies plus @tensorflow/tfjs-node-gpu ----
FROM ${CUDA_IMAGE} AS gpu-deps
COPY --from=node20 /usr/local/bin/node /usr/local/bin/node
COPY --from=node20 /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
# Only used if no prebuilt tfjs binding matches and node-pre-gyp falls back to compiling it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# Keep tfjs-node-gpu, drop the CPU tfjs-node (a second libtensorflow). Its install script downloads
# libtensorflow-gpu 2.9.1; an optional dep that fails installs nothing and npm carries on, so check the
# binding and the library are there rather than ship an image that silently falls back to wasm. The webgpu
# packages (the second GPU path) come along; only their linux-x64 Dawn build is kept.
# Its install runs scripts (tfjs-node-gpu's download), so the project's postinstall (native/build.mjs, not copied
# here: a GPU image computes on the GPU) is dropped with it.
RUN npm pkg delete 'optionalDependencies.@tensorflow/tfjs-node' scripts.postinstall \
 && npm ci --omit=dev --no-audit --no-fund \
 && ls node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v*/tfjs_binding.node \
       node_modules/@tensorflow/tfjs-node-gpu/deps/lib/libtensorflow.so.* \
       node_modules/webgpu/dist/linux-x64/dawn.node \
 && find node_modules/webgpu/dist -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} + \
 && find node_modules -name '*.map' -delete \
 && npm cache clean --force

# ---- webgpu-deps: production dependencies plus webgpu (Dawn) and tfjs-backend-webgpu, no tfjs-node ----
FROM node20 AS webgpu-deps
WORKDIR /app
COPY package.json package-lock.json ./
# Neither tfjs-node package: they download libtensorflow at install. webgpu ships its dawn.node in the package
# (its install script only matters on macOS); the build fails if it is missing rather than ship a wasm image.
RUN npm pkg delete 'optionalDependencies.@tensorflow/tfjs-node' 'optionalDependencies.@tensorflow/tfjs-node-gpu' \
 && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && ls node_modules/webgpu/dist/linux-x64/dawn.node node_modules/@tensorflow/tfjs-backend-webgpu/package.json \
 && find node_modules/webgpu/dist -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} + \
 && find node_modules -name '*.map' -delete \
 && npm cache clean --force

# ---- gpu: CUDA 11 + cuDNN 8 runtime, Node 20, MHE_BACKEND=auto picks tensorflow on the GPU, else webgpu ----
FROM ${CUDA_IMAGE} AS gpu
COPY --from=node20 /usr/local/bin/node /usr/local/bin/node
# The Vulkan loader and GL dispatch libraries, for webgpu: the NVIDIA driver's Vulkan ICD needs them.
RUN groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --no-create-home --shell /usr/sbin/nologin node \
 && apt-get update \
 && apt-get install -y --no-install-recommends libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libopengl0 libgles2 \
 && rm -rf /var/lib/apt/lists/*
# TF_FORCE_GPU_ALLOW_GROWTH: take GPU memory as needed, so several replicas can share one GPU.
# NVIDIA_DRIVER_CAPABILITIES: compute (CUDA) and graphics (the Vulkan ICD, which webgpu drives).
# MALLOC_MMAP_THRESHOLD_: glibc maps buffers of 128 KiB and more on their own, so memory freed by an unloaded
# model version goes back to the system (README, Model repository: Memory).
ENV NODE_ENV=production \
    MALLOC_MMAP_THRESHOLD_=131072 \
    HOST=0.0.0.0 \
    PORT=8080 \
    MHE_MODEL=/models/demo \
    MHE_BACKEND=auto \
    TF_FORCE_GPU_ALLOW_GROWTH=true \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics
WORKDIR /app
COPY --from=gpu-deps /app/node_modules ./node_modules
COPY --from=gpu-deps /app/package.json ./package.json
COPY --from=build /app/dist ./dist
COPY deploy/healthcheck.mjs ./deploy/healthcheck.mjs
COPY models/demo /models/demo
VOLUME ["/models"]
USER 1000:1000
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 CMD ["node", "/app/deploy/healthcheck.mjs"]
CMD ["node", "dist/src/main.js"]

# ---- webgpu: slim Node 20 + the Vulkan loader; WebGPU (Dawn) on the host's GPU, no CUDA in the image ----
FROM node20 AS webgpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libopengl0 libgles2 \
 && rm -rf /var/lib/apt/lists/*
# MHE_BACKEND=webgpu, not auto: a container without the GPU stops at start with the reason instead of serving
# on wasm unnoticed. NVIDIA_DRIVER_CAPABILITIES with graphics makes the NVIDIA runtime mount the Vulkan ICD.
# MALLOC_MMAP_THRESHOLD_: glibc maps buffers of 128 KiB and more on their own, so memory freed by an unloaded
# model version goes back to the system (README, Model repository: Memory).
ENV NODE_ENV=production \
    MALLOC_MMAP_THRESHOLD_=131072 \
    HOST=0.0.0.0 \
    PORT=8080 \
    MHE_MODEL=/models/demo \
    MHE_BACKEND=webgpu \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=graphics,utility
WORKDIR /app
COPY --from=webgpu-deps /app/node_modules ./node_modules
COPY --from=webgpu-deps /app/package.json ./package.json
COPY --from=build /app/dist ./dist
COPY deploy/healthcheck.mjs ./deploy/healthcheck.mjs
COPY models/demo /models/demo
VOLUME ["/models"]
USER 1000:1000
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 CMD ["node", "/app/deploy/healthcheck.mjs"]
CMD ["node", "dist/src/main.js"]

# ---- runtime (default): slim Node 20, CPU ----
FROM node20 AS runtime
# MALLOC_MMAP_THRESHOLD_: glibc maps buffers of 128 KiB and more on their own, so memory freed by an unloaded
# model version goes back to the system (README, Model repository: Memory).
ENV NODE_ENV=production \
    MALLOC_MMAP_THRESHOLD_=131072 \
    HOST=0.0.0.0 \
    PORT=8080 \
    MHE_MODEL=/models/demo \
    MHE_BACKEND=auto
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
COPY --from=build /app/native/build ./native/build
COPY deploy/healthcheck.mjs ./deploy/healthcheck.mjs
COPY models/demo /models/demo
VOLUME ["/models"]
# The app's files stay root-owned: the service cannot modify itself.
USER 1000:1000
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["node", "/app/deploy/healthcheck.mjs"]
# node is PID 1 and handles SIGTERM itself: it stops being ready, answers what is queued, then exits.
CMD ["node", "dist/src/main.js"]
