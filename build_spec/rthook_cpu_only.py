"""PyInstaller runtime hook of the slim CUDA build: hides GPUs from torch.

The slim build leaves out the libraries CUDA work loads lazily (cuDNN's engines,
cuSOLVER, NVRTC's builtins, see SLIM_DROP in resnet-studio.spec). Without a GPU in sight
torch never tries to load them, and the app's device list says why CUDA is off instead
of a training run failing halfway with a missing library. Build with
RESNET_STUDIO_SLIM=0 for a bundle that uses the GPU.
"""

import os

os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("RESNET_STUDIO_BUILD_FLAVOR", "slim-cuda (CPU only)")
