"""The Coral NPU backend: RVV kernel codegen (cpp/), firmware (AOT), toolchain and QEMU runner."""
