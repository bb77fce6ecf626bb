# Kernel benchmarks (benchmarks/kernels/README.md), a fragment included at the end of the main Makefile.
#   make bench-kernels      nvcc-built programs, run one after another: on a GPU each validates its kernel versions
#                           against the CPU twins and times them; without a device it times the CPU twins
#   make bench-kernels-emu  the same programs built against the emulator (g++ -DAVT_EMU): validation on reduced
#                           shapes only
# Every program links all kernel objects (of kernels/cuda, native or emulated) and the earlier kernel versions kept
# here (BK_OLD); outputs go to $(BUILD)/bench_kernels.
BK_DIR      := $(BUILD)/bench_kernels
BK_NAMES    := layernorm attention linear elementwise optim
BK_OLD      := attention_v1
BK_HDRS     := benchmarks/kernels/bench_common.cuh kernels/cuda/cuda_tol.h kernels/cuda/cuda_buf.h
BK_OPENMP   := $(filter -fopenmp,$(CFLAGS))

.PHONY: bench-kernels bench-kernels-emu

# ---- emulated: validation only ----
BK_EMU_BINS := $(BK_NAMES:%=$(BK_DIR)/emu/bench_%)
BK_EMU_DEPS := $(BK_OLD:%=$(BK_DIR)/emu/%.o) $(patsubst %.cu,$(BUILD)/emu/%.o,$(wildcard kernels/cuda/*.cu)) \
               $(patsubst %.cpp,$(BUILD)/emu/%.o,$(wildcard kernels/emu/*.cpp)) $(BUILD)/libavt.a

$(BK_DIR)/emu/%.o: benchmarks/kernels/%.cu $(BK_HDRS) $(EMU_HDRS)
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -x c++ -c $< -o $@

$(BK_DIR)/emu/bench_%: $(BK_DIR)/emu/bench_%.o $(BK_EMU_DEPS)
	$(CXX) $(BK_OPENMP) $^ -o $@ $(LDFLAGS) $(LDLIBS) -lstdc++

.SECONDARY: $(foreach d,emu cuda,$(BK_NAMES:%=$(BK_DIR)/$(d)/bench_%.o) $(BK_OLD:%=$(BK_DIR)/$(d)/%.o))

bench-kernels-emu: $(BK_EMU_BINS)
	@set -e; for p in $^; do OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $$p; done

# ---- native: nvcc objects, linked by nvcc with the CUDA libraries ----
ifeq ($(HAVE_NVCC),yes)
BK_BINS     := $(BK_NAMES:%=$(BK_DIR)/cuda/bench_%)
BK_DEPS     := $(BK_OLD:%=$(BK_DIR)/cuda/%.o) $(patsubst %.cu,$(BUILD)/cuda/%.o,$(wildcard kernels/cuda/*.cu)) \
               $(BUILD)/libavt.a
# nvcc takes host linker options through -Xlinker, host compiler ones through -Xcompiler.
BK_NVCC_LIBS := $(subst -Wl$(comma),-Xlinker ,$(LDFLAGS) $(LDLIBS)) $(BK_OPENMP:%=-Xcompiler %) $(NVCC_LIBS) -lcublas

$(BK_DIR)/cuda/%.o: benchmarks/kernels/%.cu $(BK_HDRS) $(wildcard kernels/cuda/*.cuh) base/philox.h \
                    kernels/optim.h base/common.h kernels/cpu/kernels.h
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_ALL) -c $< -o $@

$(BK_DIR)/cuda/bench_%: $(BK_DIR)/cuda/bench_%.o $(BK_DEPS)
	$(NVCC) $^ -o $@ $(BK_NVCC_LIBS)

bench-kernels: $(BK_BINS)
	@set -e; for p in $^; do $$p; done
else
bench-kernels:
	@echo "[avt] bench-kernels needs nvcc (see the nvcc line above); make bench-kernels-emu validates under emulation"
	@exit 1
endif
