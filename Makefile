# avt build. `make` builds the avt tool (the CPU engine, plus the cuda backend when nvcc is found: see the CUDA
# section); `make test` builds and runs the Criterion suite (the PyTorch reference twin writes the golden files
# first); `make demo` runs the main job on a small generated media corpus; `make bench` runs the CPU benchmarks.
# Knobs: ARCH=native|portable (the target CPU, below), WERROR=1 (warnings as errors, as CI builds), BUILD=DIR,
# CFLAGS / OPT (optimisation and debugging only). Probes are real compile/link tests; each prints what it found.

# Build on every core.
MAKEFLAGS += -j$(shell nproc)

ifeq ($(origin CC),default)
  CC := gcc
endif
PYTHON  ?= /usr/bin/python3
BUILD   ?= build
# CFLAGS (from the command line or the environment) holds optimisation and debugging only; the flags the code needs
# are added with `override`, so `make CFLAGS=-O2` and `CFLAGS=-O2 make` still build it.
OPT     ?= -O3
CFLAGS  ?= $(OPT) -g
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -I.
LDLIBS  += -lm
# Warnings are errors only when asked: `make WERROR=1` (.ci/run). A user's other compiler or CPU must still build.
ifeq ($(WERROR),1)
  override CFLAGS += -Werror
  WERROR_CXX := -Werror
  WERROR_NVCC := --Werror all-warnings -Xptxas -Werror -Xcompiler -Werror
endif

# probe NAME,FLAGS: compile and link the program in variable NAME; "yes" when it builds.
$(shell mkdir -p $(BUILD)/probe)
probe = $(file >$(BUILD)/probe/$(1).c,$($(1)))$(shell $(CC) $(BUILD)/probe/$(1).c -o $(BUILD)/probe/$(1) $(2) >/dev/null 2>&1 && echo yes)

define OPENMP_PROG
#include <omp.h>
int main(void) { return omp_get_max_threads() < 0; }
endef
define OPENBLAS_PROG
#include <cblas.h>
int main(void) {
    float a = 1, b = 1, c = 0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1, &a, 1, &b, 1, 0, &c, 1);
    openblas_set_num_threads(1);
    return c != 1;
}
endef
define CJSON_PROG
#include <cjson/cJSON.h>
int main(void) { cJSON_Delete(cJSON_Parse("{}")); return 0; }
endef
define CRITERION_PROG
#include <criterion/criterion.h>
Test(probe, ok) {}
endef

# Target CPU. ARCH=native (default): -march=native when the compiler takes it, for the machine that builds.
# ARCH=portable: x86-64-v2 (SSE4.2, POPCNT) on x86-64, the compiler's default elsewhere; the AVX2 code paths (Philox
# dropout, the LBP cascade) are still compiled and chosen at run time when the CPU has AVX2, so one binary runs on
# every node of a cluster. A -march in CFLAGS wins over both.
ARCH ?= native
define EMPTY_PROG
int main(void) { return 0; }
endef
ifneq ($(filter -march=%,$(CFLAGS)),)
  $(info [avt] ARCH .............. $(filter -march=%,$(CFLAGS)) from CFLAGS)
else ifeq ($(ARCH),native)
  ifeq ($(call probe,EMPTY_PROG,-march=native),yes)
    ARCH_FLAGS := -march=native
  endif
  $(info [avt] ARCH=native ....... $(or $(ARCH_FLAGS),the compiler's default target (-march=native not taken)))
else ifeq ($(ARCH),portable)
  ifneq ($(filter x86_64%,$(shell $(CC) -dumpmachine)),)
    ARCH_FLAGS := -march=x86-64-v2
  endif
  $(info [avt] ARCH=portable ..... $(or $(ARCH_FLAGS),the compiler's default target): AVX2 paths chosen at run time)
else
  $(error [avt] ARCH=$(ARCH): use ARCH=native (default) or ARCH=portable)
endif
override CFLAGS += $(ARCH_FLAGS)

# OpenMP: used where a kernel loops over rows or heads.
HAVE_OPENMP := $(call probe,OPENMP_PROG,-fopenmp)
ifeq ($(HAVE_OPENMP),yes)
  override CFLAGS += -fopenmp
  $(info [avt] OpenMP ............ found (-fopenmp))
else
  $(info [avt] OpenMP ............ not found: kernels run single-threaded)
endif

# OpenBLAS: required, the CPU GEMMs go through cblas_sgemm. Prefer Debian's OpenMP build: its GEMMs run on the
# same OpenMP thread pool as our kernels. With the pthread build the two pools fight for the cores (OpenMP
# threads spin between regions): measured 2.0x slower per training step on 2 cores.
define OPENBLAS_OPENMP_PROG
#include <cblas.h>
int main(void) { return openblas_get_parallel() != 2; }
endef
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
OPENBLAS_OPENMP_DIR ?= /usr/lib/$(MULTIARCH)/openblas-openmp
OPENBLAS_OPENMP_LIBS := -L$(OPENBLAS_OPENMP_DIR) -Wl,-rpath,$(OPENBLAS_OPENMP_DIR) -lopenblas
ifeq ($(HAVE_OPENMP)$(shell test "$(call probe,OPENBLAS_OPENMP_PROG,-fopenmp $(OPENBLAS_OPENMP_LIBS))" = yes && $(BUILD)/probe/OPENBLAS_OPENMP_PROG && echo yes),yesyes)
  LDLIBS += $(OPENBLAS_OPENMP_LIBS)
  $(info [avt] OpenBLAS .......... found, OpenMP build ($(OPENBLAS_OPENMP_DIR)))
else ifeq ($(call probe,OPENBLAS_PROG,-lopenblas),yes)
  LDLIBS += -lopenblas
  $(info [avt] OpenBLAS .......... found (-lopenblas); its OpenMP build is faster here: apt-get install libopenblas-openmp-dev)
else
  $(error [avt] OpenBLAS not found (cblas.h + -lopenblas): apt-get install libopenblas-dev)
endif

# cJSON parses the safetensors header.
ifneq ($(call probe,CJSON_PROG,-lcjson),yes)
  $(error [avt] cJSON not found (cjson/cJSON.h + -lcjson): apt-get install libcjson-dev)
endif
$(info [avt] cJSON ............. found (-lcjson))
LDLIBS += -lcjson

# The floors, bottom to top (README "Map"): base, kernels, engine, models, train, data (media and corpus wings),
# finetune (fine-tuning runs, their protocols, metrics and tables).
LIB_DIRS := base kernels/cpu engine models train data/media data/corpus finetune
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOL_SRC := $(wildcard tools/*.c)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(shell find tests -name '*.c' -not -path 'tests/fuzz/*' -not -path 'tests/mpi/*' | sort)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
BENCH_SRC := $(wildcard benchmarks/*.c)
HDRS     := $(foreach d,$(LIB_DIRS) kernels tools,$(wildcard $(d)/*.h))

.PHONY: all test golden bench demo table fuzz clean layers
all: $(BUILD)/avt

$(BUILD)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/tests/%.o: tests/%.c $(HDRS) tests/testutil.h $(wildcard tests/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libavt.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/avt: $(TOOL_OBJ) $(BUILD)/libavt.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

# ---- tests: one Criterion binary; golden files come from the PyTorch twin (tests/reference) ----
$(BUILD)/avt_tests: $(TEST_OBJ) $(BUILD)/libavt.a
	@test "$(call probe,CRITERION_PROG,-lcriterion)" = yes \
	  || { echo "[avt] Criterion not found (criterion/criterion.h + -lcriterion): apt-get install libcriterion-dev"; exit 1; }
	@echo "[avt] Criterion ......... found (-lcriterion)"
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lcriterion $(LDLIBS)

GOLDEN := $(BUILD)/golden/.done
$(GOLDEN): $(wildcard tests/reference/*.py) tools/st_io.py
	@mkdir -p $(BUILD)/golden
	$(PYTHON) tests/reference/make_golden.py --out $(BUILD)/golden
	$(PYTHON) tests/reference/check_twin_numpy.py $(BUILD)/golden
	@touch $@
golden: $(GOLDEN)
layers:
	@bash tools/check_layers.sh

test: $(BUILD)/avt $(BUILD)/avt_tests $(GOLDEN)
	@bash tools/check_layers.sh
	AVT_GOLDEN=$(BUILD)/golden AVT_BIN=$(BUILD)/avt AVT_PYTHON=$(PYTHON) OMP_NUM_THREADS=2 $(BUILD)/avt_tests -j1 --verbose=0

# ---- a first real run: base model, feature files in the paper's formats, avt embed ----
demo: $(BUILD)/avt
	BUILD=$(BUILD) bash tools/demo.sh

# ---- the fine-tuning main job: avt table on a generated emotion corpus (tools/table.sh) ----
table: $(BUILD)/avt
	BUILD=$(BUILD) bash tools/table.sh

# ---- benchmarks (not part of the tests: speed is reported as a ratio against PyTorch in the same run) ----
$(BUILD)/bench_train $(BUILD)/bench_finetune: $(BUILD)/%: $(BUILD)/benchmarks/%.o $(BUILD)/tools/cli.o $(BUILD)/libavt.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench_fbank $(BUILD)/bench_cascade: $(BUILD)/%: $(BUILD)/benchmarks/%.o $(BUILD)/libavt.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

bench: $(BUILD)/avt $(BUILD)/bench_train $(BUILD)/bench_finetune
	bash benchmarks/run.sh

clean:
	rm -rf $(BUILD)

# ---- fuzz: libFuzzer + ASan/UBSan on the safetensors parser; `make fuzz FUZZ_SECONDS=600` for a longer run ----
fuzz:
	@command -v clang >/dev/null || { echo "[avt] clang not found: apt-get install clang"; exit 1; }
	@mkdir -p $(BUILD)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  tests/fuzz/fuzz_safetensors.c engine/safetensors.c base/common.c -lcjson -o $(BUILD)/fuzz_safetensors
	rm -rf $(BUILD)/fuzz_corpus && cp -r tests/fuzz/corpus $(BUILD)/fuzz_corpus
	cd $(BUILD) && ./fuzz_safetensors -max_total_time=$(or $(FUZZ_SECONDS),60) -max_len=4096 -print_final_stats=1 fuzz_corpus

# ==== CUDA: the cuda backend, natively (nvcc) or on the CPU emulator (kernels/emu) ==============================
# Three build modes (README "Build modes"):
#   CPU   no nvcc: avt has the cpu backend only; the emulated CUDA tests still run in `make test`.
#   CUDA  nvcc found (PATH or /usr/local/cuda/bin; NVCC=... overrides): every .cu is compiled for CUDA_ARCHS with
#         warnings as errors, and avt links the native cuda backend with cuBLASLt, cuDNN and NCCL (--device cuda
#         needs a GPU at run time). `make test-gpu` builds and runs the CUDA tests natively.
#   EMU   `make EMU=1`: avt links the cuda backend compiled by g++ against the emulator, so --device cuda runs
#         everywhere (slowly).
# Every .cu is also C++ for the emulator: g++ compiles it against kernels/emu/emu.h (-DAVT_EMU), its kernels run as
# fibers on the CPU, and the emulated tests are linked into the one test binary that `make test` runs.
ifeq ($(origin CXX),default)
  CXX := g++
endif
comma := ,
EMU_CXXFLAGS ?= $(OPT) -g
# -ffp-contract=off: no FMA contraction, like the C build of the CPU twins (g++'s C++ default would fuse a*b+c).
override EMU_CXXFLAGS += -std=c++17 -D_GNU_SOURCE -DAVT_EMU -Wall -Wextra -Wshadow $(WERROR_CXX) -Wno-unknown-pragmas \
                -ffp-contract=off -fstack-clash-protection -I. $(ARCH_FLAGS)
EMU_HDRS      := $(wildcard kernels/emu/*.h kernels/cuda/*.cuh kernels/cuda/*.h tests/cuda/*.h) $(HDRS)
CUDA_SRC      := $(wildcard kernels/cuda/*.cu engine/*.cu train/*.cu)   # the backend, its kernels, NCCL
EMU_SELF_SRC  := $(wildcard tests/kernels/emu/*.cu tests/kernels/emu/*.cpp)   # the emulator's own tests
CUDA_TEST_SRC := $(wildcard tests/cuda/*.cpp) # CUDA vs CPU: emulated and native
EMU_RT_SRC    := $(wildcard kernels/emu/*.cpp)
EMU_CUDA_OBJ  := $(EMU_RT_SRC:%.cpp=$(BUILD)/emu/%.o) $(CUDA_SRC:%.cu=$(BUILD)/emu/%.o)
EMU_TEST_OBJ  := $(EMU_CUDA_OBJ) $(patsubst %,$(BUILD)/emu/%.o,$(basename $(EMU_SELF_SRC) $(CUDA_TEST_SRC)))

$(BUILD)/emu/%.o: %.cpp $(EMU_HDRS)
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -c $< -o $@
$(BUILD)/emu/%.o: %.cu $(EMU_HDRS)
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -x c++ -c $< -o $@

# $^ lists these objects after libavt.a, so the archive (base/common.c, engine/backend.c) and the C++ runtime
# come again last.
$(BUILD)/avt_tests: $(EMU_TEST_OBJ)
$(BUILD)/avt_tests: LDLIBS += $(BUILD)/libavt.a -lstdc++

# nvcc: a real probe (compile a kernel, link cudart, cuBLASLt, cuDNN and NCCL), cached in $(BUILD)/probe until nvcc
# changes. The probe never runs with warnings as errors: a new nvcc's new warning must not drop the backend.
NVCC       ?= $(firstword $(shell command -v nvcc 2>/dev/null) $(wildcard /usr/local/cuda/bin/nvcc))
CUDA_ARCHS ?= 80 90
NVCCFLAGS  ?= -O3
NVCC_BASE  := $(NVCCFLAGS) -std=c++17 $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
              -Xcompiler -fPIC,-Wall,-Wextra,-Wshadow -I.
NVCC_ALL   := $(NVCC_BASE) $(WERROR_NVCC)
CUDA_LIBDIR ?= $(patsubst %/bin/nvcc,%,$(NVCC))/lib64
CUDA_LIBS  := -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcudart -lcublasLt -lcudnn -lnccl -lstdc++
NVCC_LIBS  := $(subst -Wl$(comma),-Xlinker ,$(filter-out -lstdc++,$(CUDA_LIBS)))
define NVCC_PROG
#include <cublasLt.h>
#include <cudnn.h>
#include <nccl.h>
__global__ void probe(float *p) { p[threadIdx.x] = 1.0f; }
int main(void) {
    int v = 0;
    probe<<<1, 1>>>(nullptr);
    return (int)cublasLtGetVersion() + (int)cudnnGetVersion() + (int)ncclGetVersion(&v);
}
endef
NVCC_STAMP := $(BUILD)/probe/nvcc-libs.ok
ifeq ($(MAKECMDGOALS),clean)
else ifneq ($(NVCC),)
  HAVE_NVCC := $(shell test "$$(cat $(NVCC_STAMP) 2>/dev/null)" = "$(NVCC) $(CUDA_ARCHS)" -a $(NVCC_STAMP) -nt $(NVCC) \
                 && echo yes)
  ifneq ($(HAVE_NVCC),yes)
    HAVE_NVCC := $(file >$(BUILD)/probe/nvcc.cu,$(NVCC_PROG))$(shell $(NVCC) $(NVCC_BASE) $(BUILD)/probe/nvcc.cu \
                   -o $(BUILD)/probe/nvcc $(NVCC_LIBS) >/dev/null 2>&1 && echo "$(NVCC) $(CUDA_ARCHS)" >$(NVCC_STAMP) && echo yes)
  endif
endif
ifeq ($(MAKECMDGOALS),clean)
else ifeq ($(HAVE_NVCC),yes)
  CUDA_OBJ := $(CUDA_SRC:%.cu=$(BUILD)/cuda/%.o) $(patsubst %.cu,$(BUILD)/cuda/%.o,$(filter %.cu,$(EMU_SELF_SRC)))
  $(info [avt] nvcc .............. found ($(NVCC), CUDA $(shell $(NVCC) --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')): .cu files compiled for $(CUDA_ARCHS:%=sm_%)$(if $(WERROR_NVCC),$(comma) warnings as errors))
  $(info [avt] CUDA libraries .... cudart, cuBLASLt, cuDNN, NCCL link ($(CUDA_LIBDIR)))
all test: $(CUDA_OBJ)
$(BUILD)/cuda/%.o: %.cu $(wildcard kernels/cuda/*.cuh) base/philox.h kernels/optim.h base/common.h engine/backend.h
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_ALL) -c $< -o $@
# The CUDA-vs-CPU tests, natively: host C++ against the real runtime (built by `make test` too, to prove it links).
$(BUILD)/cuda/%.o: %.cpp $(EMU_HDRS)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_ALL) -c $< -o $@
$(BUILD)/avt_tests_gpu: $(CUDA_TEST_SRC:%.cpp=$(BUILD)/cuda/%.o) $(CUDA_SRC:%.cu=$(BUILD)/cuda/%.o) $(BUILD)/tests/testutil.o \
                         $(BUILD)/libavt.a
	$(CXX) -fopenmp $^ -o $@ $(LDFLAGS) -lcriterion $(BUILD)/libavt.a $(LDLIBS) $(CUDA_LIBS)
test: $(BUILD)/avt_tests_gpu
test-gpu: $(BUILD)/avt_tests_gpu
	OMP_NUM_THREADS=$(or $(THREADS),4) $(BUILD)/avt_tests_gpu -j1 --verbose=0
else ifneq ($(NVCC),)
  $(info [avt] nvcc .............. $(NVCC) cannot build and link a kernel with cudart, cuBLASLt, cuDNN and NCCL for $(CUDA_ARCHS:%=sm_%) (try it on $(BUILD)/probe/nvcc.cu): no native CUDA backend)
else
  $(info [avt] nvcc .............. not found (PATH, /usr/local/cuda/bin): no native CUDA backend (the emulated tests still run))
endif
ifneq ($(HAVE_NVCC),yes)
test-gpu:
	@echo "[avt] make test-gpu needs nvcc and the CUDA libraries (see above)"; exit 1
endif

# The cuda backend: emulated with EMU=1 (linked into avt), else native when nvcc works. A native avt does not link
# it: it lives in $(BUILD)/libavt_cuda.so beside avt, loaded on first use of --device cuda (engine/backend.c), so
# that commands without a GPU skip loading cuBLASLt, cuDNN and NCCL (~0.2 s a process); avt exports the few
# functions the module calls (-rdynamic). bench_train and bench_finetune link the backend in.
ifeq ($(EMU),1)
  AVT_CUDA_OBJ  := $(EMU_CUDA_OBJ)
  AVT_CUDA_LIBS := -lstdc++
  $(info [avt] EMU=1 ............. avt's --device cuda runs the CUDA kernels on the CPU emulator)
  $(BUILD)/avt: $(AVT_CUDA_OBJ)
  $(BUILD)/avt: LDLIBS += $(BUILD)/libavt.a $(AVT_CUDA_LIBS)
else ifeq ($(HAVE_NVCC),yes)
  AVT_CUDA_OBJ  := $(CUDA_SRC:%.cu=$(BUILD)/cuda/%.o)
  AVT_CUDA_LIBS := $(CUDA_LIBS)
  $(BUILD)/libavt_cuda.so: $(AVT_CUDA_OBJ)
	$(CXX) -shared $^ -o $@ $(CUDA_LIBS)
  $(BUILD)/avt: | $(BUILD)/libavt_cuda.so
  $(BUILD)/avt: LDFLAGS += -rdynamic
endif
$(BUILD)/bench_train $(BUILD)/bench_finetune: $(AVT_CUDA_OBJ)
$(BUILD)/bench_train $(BUILD)/bench_finetune: LDLIBS += $(if $(AVT_CUDA_OBJ),$(BUILD)/libavt.a $(AVT_CUDA_LIBS))
.PHONY: test-gpu
include benchmarks/kernels/kernels.mk

# ==== MPI: data-parallel runs (train/dist.c; gradients in device memory go through train/dist_nccl.cu) ========
# This block sits after the rules on purpose: a rule above `all:` would become the default goal.
# A real probe (MPI_Init + MPI_Allreduce, compiled and linked) with the flags the MPI compiler wrapper reports
# (OpenMPI's `mpicc --showme`; set MPI_CFLAGS and MPI_LIBS by hand for another MPI). Found: dist.c is compiled with
# -DAVT_HAVE_MPI, avt, the tests and the benchmarks link MPI, and `make test` builds $(BUILD)/dist_check, the
# multi-process program that tests/train/test_dist.c runs under mpirun. Not found: avt runs single-process only.
MPICC ?= mpicc
ifeq ($(origin MPI_LIBS),undefined)
  MPI_CFLAGS := $(shell $(MPICC) --showme:compile 2>/dev/null)
  MPI_LIBS   := $(shell $(MPICC) --showme:link 2>/dev/null)
endif
define MPI_PROG
#include <mpi.h>
int main(void) {
    float x = 1;
    MPI_Init(NULL, NULL);
    MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    return MPI_Finalize();
}
endef
ifneq ($(MAKECMDGOALS),clean)
  HAVE_MPI := $(if $(MPI_LIBS),$(call probe,MPI_PROG,$(MPI_CFLAGS) $(MPI_LIBS)))
endif
ifeq ($(HAVE_MPI),yes)
  $(info [avt] MPI ............... found ($(MPI_LIBS)): multi-process training under mpirun/srun)
  LDLIBS += $(MPI_LIBS)
$(BUILD)/train/dist.o $(BUILD)/tests/mpi/dist_check.o: override CFLAGS += -DAVT_HAVE_MPI $(MPI_CFLAGS)
$(BUILD)/dist_check: $(BUILD)/tests/mpi/dist_check.o $(BUILD)/libavt.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)
test: $(BUILD)/dist_check
else ifneq ($(MAKECMDGOALS),clean)
  $(info [avt] MPI ............... not found ($(MPICC) --showme, mpi.h + MPI_Init/MPI_Allreduce): avt runs single-process only (apt-get install libopenmpi-dev openmpi-bin))
endif
$(BUILD)/cuda/engine/dist_nccl.o: train/dist.h

# ==== FFmpeg: media decoding (data/media/media.c) =====================================================================
# A real probe (swr_alloc_set_opts2 + libavformat, compiled and linked with -Werror=deprecated-declarations) with the
# flags pkg-config reports. Found: data/media/media.c is compiled with -DAVT_HAVE_FFMPEG and avt, the tests and the
# benchmarks link FFmpeg. Not found: the build still works and media_decode returns "built without FFmpeg".
# `make fuzz-media` fuzzes media_decode (libFuzzer + ASan/UBSan) on fixtures from tests/fixtures.sh.
FFMPEG_PKGS := libavformat libavcodec libswresample libswscale libavutil
define FFMPEG_PROG
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
int main(void) {
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    SwrContext *swr = NULL;
    int rc = swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_FLT, 16000, &mono, AV_SAMPLE_FMT_S16, 48000, 0, NULL);
    swr_free(&swr);
    AVFormatContext *fmt = avformat_alloc_context();
    avformat_free_context(fmt);
    sws_freeContext(NULL);
    return rc < 0 || avcodec_version() == 0;
}
endef
ifneq ($(MAKECMDGOALS),clean)
  FFMPEG_CFLAGS := $(shell pkg-config --cflags $(FFMPEG_PKGS) 2>/dev/null)
  FFMPEG_LIBS   := $(shell pkg-config --libs $(FFMPEG_PKGS) 2>/dev/null)
  HAVE_FFMPEG   := $(if $(FFMPEG_LIBS),$(call probe,FFMPEG_PROG,-Werror=deprecated-declarations $(FFMPEG_CFLAGS) $(FFMPEG_LIBS)))
endif
ifeq ($(HAVE_FFMPEG),yes)
  $(info [avt] FFmpeg ............ found ($(FFMPEG_LIBS)): media decoding)
$(BUILD)/data/media/media.o: override CFLAGS += -DAVT_HAVE_FFMPEG $(FFMPEG_CFLAGS)
  LDLIBS += $(FFMPEG_LIBS)
else ifneq ($(MAKECMDGOALS),clean)
  $(info [avt] FFmpeg ............ not found (pkg-config $(FFMPEG_PKGS), then a compile+link probe): no media decoding (apt-get install pkg-config libavformat-dev libavcodec-dev libswresample-dev libswscale-dev libavutil-dev))
endif
.PHONY: fuzz-media
fuzz-media:
	@test "$(HAVE_FFMPEG)" = yes || { echo "[avt] make fuzz-media needs FFmpeg (see above)"; exit 1; }
	@command -v clang >/dev/null || { echo "[avt] clang not found: apt-get install clang"; exit 1; }
	@mkdir -p $(BUILD)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. -DAVT_HAVE_FFMPEG $(FFMPEG_CFLAGS) \
	  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  tests/fuzz/fuzz_media.c data/media/media.c base/common.c $(FFMPEG_LIBS) -lm -o $(BUILD)/fuzz_media
	rm -rf $(BUILD)/fuzz_media_corpus && bash tests/fixtures.sh --fuzz-seeds $(BUILD)/fuzz_media_corpus
	cd $(BUILD) && ./fuzz_media -max_total_time=$(or $(FUZZ_SECONDS),60) -max_len=65536 -timeout=20 \
	  -print_final_stats=1 fuzz_media_corpus
