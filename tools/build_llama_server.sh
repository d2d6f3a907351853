#!/usr/bin/env bash
# Builds llama.cpp's llama-server (CPU only) from the llama.cpp source that the llama-cpp-python sdist on PyPI
# vendors, into a cache outside the repository, and prints the binary's path on stdout (logs go to stderr).
# Does nothing but print the path when the binary is already there.
#
#   tools/build_llama_server.sh            # -> ${PULUMI_VLLM_CACHE:-$HOME/.cache/pulumi-vllm}/llama-server-<ver>/llama-server
#
# Only the llama-server target is built (no tests, examples, web UI, HTTPS or CURL), for this CPU (GGML_NATIVE),
# its C++ at -O1 (C keeps Release's -O3): the server, JSON and template code is most of the compile time, and -O1
# compiles it about 40% faster; this binary serves tiny test models only. About 5 to 8 minutes on two cores.
# llama-cpp-python 0.3.36 vendors llama.cpp commit 0c1e57098, release b11312: the build of the image pinned in
# components/pulumi_vllm/engine/profiles/llamacpp.py.
# Environment: PULUMI_VLLM_CACHE (cache root), PYTHON (a Python with pip; default: the repository's .venv),
# JOBS (parallel compile jobs; default: nproc).
set -euo pipefail

VERSION=0.3.36
LLAMACPP_BUILD=11312   # the llama.cpp release of the vendored commit (the sdist's git history is shallow)
LLAMACPP_COMMIT=0c1e57098
SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
SDIST="llama_cpp_python-${VERSION}.tar.gz"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${PULUMI_VLLM_CACHE:-$HOME/.cache/pulumi-vllm}"
dest="${cache}/llama-server-${VERSION}"
binary="${dest}/llama-server"

if [[ -x "${binary}" ]]; then
    echo "${binary}"
    exit 0
fi

python="${PYTHON:-}"
if [[ -z "${python}" ]]; then
    if [[ -x "${repo}/.venv/bin/python" ]]; then python="${repo}/.venv/bin/python"; else python=python3; fi
fi
jobs="${JOBS:-$(nproc)}"

mkdir -p "${dest}"
work="$(mktemp -d "${dest}/build.XXXXXX")"
trap 'rm -rf "${work}"' EXIT

echo "llama-server: downloading llama-cpp-python ${VERSION} (sdist) from PyPI" >&2
"${python}" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==${VERSION}" -d "${work}" >&2
echo "${SHA256}  ${work}/${SDIST}" | sha256sum --check --quiet - >&2
tar -xzf "${work}/${SDIST}" -C "${work}"
source="${work}/llama_cpp_python-${VERSION}/vendor/llama.cpp"

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi

start=$(date +%s)
echo "llama-server: building llama.cpp from ${source} with ${jobs} jobs" >&2
cmake -S "${source}" -B "${work}/build" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
    -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE=ON \
    -DGGML_CCACHE=OFF \
    -DLLAMA_BUILD_NUMBER="${LLAMACPP_BUILD}" \
    -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF >&2
cmake --build "${work}/build" --target llama-server -j "${jobs}" >&2
seconds=$(( $(date +%s) - start ))

install -m 0755 "${work}/build/bin/llama-server" "${binary}.tmp"
mv "${binary}.tmp" "${binary}"
printf 'llama-cpp-python %s (sha256 %s), llama.cpp b%s (%s), built in %s s\n' \
    "${VERSION}" "${SHA256}" "${LLAMACPP_BUILD}" "${LLAMACPP_COMMIT}" "${seconds}" > "${dest}/BUILD"
echo "llama-server: built in ${seconds} s" >&2
echo "${binary}"
