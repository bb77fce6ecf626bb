// The baseline attention path: cuDNN's fused scaled-dot-product attention (flash attention forward) through the
// cuDNN backend graph API, for inference and benchmarks (no dropout, no att output, no backward). Same semantics as
// attention_forward_cuda (kernels/cuda/attention.cu) and the CPU twin (kernels/cpu/attention.c): q (B, Tq, C),
// k and v (B, Tk, C), C = NH * HS, head h = columns [h*HS, (h+1)*HS); scores = (q . k^T) * HS^-0.5; causal hides
// key j from query i when j - i >= 1 + |Tk - Tq|; out (B, Tq, C).
//
// cuDNN's fused engines take half/bfloat16 inputs, so q, k, v are first rounded to bf16 copies in ws (a small kernel
// here) and the bf16 output is widened back into out; the two matmuls accumulate and the softmax runs in fp32
// inside cuDNN. In cuDNN's (b, h, s, d) terms our layout is the strides (T*C, HS, C, 1): no transposes, only
// strides (and K^T for the first matmul is K with the last two strides swapped).
//
// The operation graph is the one cuDNN's pattern matcher fuses into one flash-attention kernel (the composite form
// the cudnn-frontend builds for cuDNN 9.x before a dedicated softmax/mask node exists; all intermediates virtual,
// fp32 unless noted):
//   S1 = MATMUL(Q, K^T)                                       (b, h, Tq, Tk)
//   S2 = POINTWISE MUL(S1, scale)                             scale: by-value fp32 scalar HS^-0.5
//   causal only:
//     row = GEN_INDEX(S2, axis 2), col = GEN_INDEX(S2, axis 3)                int32
//     row' = POINTWISE ADD(row, shift)  (only when shift = |Tk - Tq| > 0)    shift: by-value int32 scalar
//     keep = CMP_GE(row', col)                                                boolean: j <= i + |Tk - Tq|
//     S3 = BINARY_SELECT(S2, -inf, keep)                                      keep ? S2 : -inf
//   M = REDUCTION MAX(S3) (b, h, Tq, 1); E = EXP(S3 - M); Z = REDUCTION ADD(E) (b, h, Tq, 1); P = E / Z
//   O = MATMUL(P, V)                                          bf16 (b, h, Tq, HS), strides (Tq*C, HS, C, 1)
// Every query keeps key 0 under our causal rule (j <= i + |Tk - Tq|), so no row is fully masked.
//
// Plans: engine configs from heuristics mode A (then FALLBACK), the first that finalizes into an execution plan
// whose workspace fits the reserve in ws wins. Built plans (and refusals, with their reason) are cached by
// (device, B, Tq, Tk, NH, HS, causal) in a small table, so a repeated call only converts, sets the stream and
// executes. One cudnnHandle_t, created lazily on the first call's device; a mutex serializes callers (the handle's
// stream is set per call).
//
// ws layout (bytes, each piece at a 256-byte multiple, so ws itself must be 16-byte aligned): q, k, v, o as bf16,
// then the reserve for cuDNN's workspace, ATT_CUDNN_WS_FIXED + 8 bytes per (batch, head, query row) -- room for a
// row max and sum. A plan needing more is skipped; if every plan needs more, the call returns -1 naming the bytes.
#include "kernels/cuda/kernels.cuh"

#ifdef AVT_EMU
size_t attention_cudnn_ws_floats(int, int, int, int, int) { return 0; }
int attention_forward_cudnn(float *, float *, const float *, const float *, const float *, int, int, int, int, int,
                            int, cudaStream_t, AvtErr *err) {
    return avt_err_set(err, "cuDNN attention is not available under emulation");
}
#else

#include <cuda_bf16.h>
#include <cudnn.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <mutex>
#include <vector>

// Checked cuDNN call: on failure "avt: FILE:LINE: EXPR: <status>: <cuDNN's last error message>" and exit(1).
static void avt_cudnn_check_at(cudnnStatus_t s, const char *expr, const char *file, int line) {
    if (s == CUDNN_STATUS_SUCCESS) return;
    char last[384];
    last[0] = '\0';
    cudnnGetLastErrorString(last, sizeof last);
    avt_fatal_at(file, line, "%s: %s%s%s", expr, cudnnGetErrorString(s), last[0] ? ": " : "", last);
}
#define cudnn_check(expr) avt_cudnn_check_at((expr), #expr, __FILE__, __LINE__)

#define ATT_CUDNN_WS_FIXED ((size_t)4 << 20)  // fixed part of the cuDNN workspace reserve (bytes)
#define ATT_CUDNN_CACHE 32                    // cached plans (shapes); the oldest is rebuilt when full
#define ATT_CUDNN_HS_MAX 256                  // cuDNN's fused SDPA head-size limit

// ---- fp32 <-> bf16 ----
__global__ void att_cudnn_to_bf16_kernel(__nv_bfloat16 *__restrict__ dst, const float *__restrict__ src, size_t n) {
    for (size_t i = GRID_START; i < n; i += GRID_STRIDE) dst[i] = __float2bfloat16_rn(src[i]);
}
__global__ void att_cudnn_to_f32_kernel(float *__restrict__ dst, const __nv_bfloat16 *__restrict__ src, size_t n) {
    for (size_t i = GRID_START; i < n; i += GRID_STRIDE) dst[i] = __bfloat162float(src[i]);
}
static void att_cudnn_to_bf16(__nv_bfloat16 *dst, const float *src, size_t n, cudaStream_t stream) {
    LAUNCH(att_cudnn_to_bf16_kernel, avt_grid(n, 256, 4096), 256, 0, stream, dst, src, n);
}
static void att_cudnn_to_f32(float *dst, const __nv_bfloat16 *src, size_t n, cudaStream_t stream) {
    LAUNCH(att_cudnn_to_f32_kernel, avt_grid(n, 256, 4096), 256, 0, stream, dst, src, n);
}

// ---- ws layout ----
struct AttCudnnLayout {
    size_t q, k, v, o, work, work_bytes, total;  // byte offsets into ws; work_bytes: the cuDNN reserve
};
static size_t att_cudnn_round(size_t x) { return (x + 255) & ~(size_t)255; }
static AttCudnnLayout att_cudnn_layout(int B, int Tq, int Tk, int NH, int HS) {
    const size_t b = B > 0 ? (size_t)B : 0, tq = Tq > 0 ? (size_t)Tq : 0, tk = Tk > 0 ? (size_t)Tk : 0,
                 nh = NH > 0 ? (size_t)NH : 0, hs = HS > 0 ? (size_t)HS : 0;
    const size_t nq = b * tq * nh * hs, nk = b * tk * nh * hs, bf = sizeof(__nv_bfloat16);
    AttCudnnLayout L;
    L.q = 0;
    L.k = L.q + att_cudnn_round(nq * bf);
    L.v = L.k + att_cudnn_round(nk * bf);
    L.o = L.v + att_cudnn_round(nk * bf);
    L.work = L.o + att_cudnn_round(nq * bf);
    L.work_bytes = ATT_CUDNN_WS_FIXED + 2 * sizeof(float) * b * nh * tq;
    L.total = L.work + L.work_bytes;
    return L;
}

size_t attention_cudnn_ws_floats(int B, int Tq, int Tk, int NH, int HS) {
    return (att_cudnn_layout(B, Tq, Tk, NH, HS).total + sizeof(float) - 1) / sizeof(float);
}

// ---- graph building: failures here are not fatal but the call's -1 (with the failing call and cuDNN's reason),
// cached with the shape ----
enum { UID_Q = 1, UID_K, UID_V, UID_O, UID_SCALE, UID_NEG_INF, UID_SHIFT, UID_VIRTUAL = 100 };

struct AttCudnnKey {
    int device, B, Tq, Tk, NH, HS, causal;
    bool operator==(const AttCudnnKey &o) const {
        return device == o.device && B == o.B && Tq == o.Tq && Tk == o.Tk && NH == o.NH && HS == o.HS &&
               causal == o.causal;
    }
};

struct AttCudnnPlan {
    bool used = false;
    AttCudnnKey key{};
    int status = 0;                                  // 0 usable, -1 refused (why)
    char why[AVT_ERR_LEN] = {0};
    cudnnBackendDescriptor_t plan = nullptr;
    int64_t ws_bytes = 0;
    int shift = 0;                                   // |Tk - Tq| when causal and nonzero (a by-value input)
    std::vector<cudnnBackendDescriptor_t> descs;     // everything the plan was built from, kept until eviction
    void release() {
        for (cudnnBackendDescriptor_t d : descs) cudnnBackendDestroyDescriptor(d);
        descs.clear();
        plan = nullptr;
        used = false;
    }
};

struct AttCudnnBuilder {
    AttCudnnPlan *p;
    char *why;  // AVT_ERR_LEN
    bool ok = true;
    int64_t next_uid = UID_VIRTUAL;

    // Records the first failure "FILE:LINE: EXPR: status: last error" and returns false.
    bool check(cudnnStatus_t s, const char *expr, int line) {
        if (s == CUDNN_STATUS_SUCCESS) return true;
        if (ok) {
            char last[256];
            last[0] = '\0';
            cudnnGetLastErrorString(last, sizeof last);
            snprintf(why, AVT_ERR_LEN, "cuDNN attention: %s:%d: %s: %s%s%s", __FILE__, line, expr,
                     cudnnGetErrorString(s), last[0] ? ": " : "", last);
        }
        ok = false;
        return false;
    }
    cudnnBackendDescriptor_t create(cudnnBackendDescriptorType_t type, int line) {
        cudnnBackendDescriptor_t d = nullptr;
        if (!ok || !check(cudnnBackendCreateDescriptor(type, &d), "cudnnBackendCreateDescriptor", line))
            return nullptr;
        p->descs.push_back(d);
        return d;
    }
    void set(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
             int64_t count, const void *value, const char *what, int line) {
        if (ok) check(cudnnBackendSetAttribute(d, name, type, count, value), what, line);
    }
    void finalize(cudnnBackendDescriptor_t d, const char *what, int line) {
        if (ok) check(cudnnBackendFinalize(d), what, line);
    }

    // A 4-d tensor; uid < 0: the next virtual id.
    cudnnBackendDescriptor_t tensor(int64_t uid, cudnnDataType_t dt, const int64_t dims[4], const int64_t strides[4],
                                    bool is_virtual, bool by_value, int line) {
        cudnnBackendDescriptor_t t = create(CUDNN_BACKEND_TENSOR_DESCRIPTOR, line);
        if (uid < 0) uid = next_uid++;
        const int64_t align = 16;
        set(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt, "tensor data type", line);
        set(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims, "tensor dims", line);
        set(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides, "tensor strides", line);
        set(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor uid", line);
        set(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align, "tensor alignment", line);
        if (is_virtual) set(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual, "virtual", line);
        if (by_value) set(t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value, "by value", line);
        finalize(t, "tensor finalize", line);
        return t;
    }
    // A virtual tensor of packed (row-major) strides.
    cudnnBackendDescriptor_t virt(cudnnDataType_t dt, int64_t d0, int64_t d1, int64_t d2, int64_t d3, int line) {
        const int64_t dims[4] = {d0, d1, d2, d3}, strides[4] = {d1 * d2 * d3, d2 * d3, d3, 1};
        return tensor(-1, dt, dims, strides, true, false, line);
    }
    // A by-value scalar (1, 1, 1, 1).
    cudnnBackendDescriptor_t scalar(int64_t uid, cudnnDataType_t dt, int line) {
        const int64_t one[4] = {1, 1, 1, 1};
        return tensor(uid, dt, one, one, false, true, line);
    }

    // y = mode(x[, b][, t]); axis >= 0 sets CUDNN_ATTR_POINTWISE_AXIS (GEN_INDEX, and as the frontend does, the
    // index shift).
    void pointwise(cudnnPointwiseMode_t mode, cudnnDataType_t prec, cudnnBackendDescriptor_t x,
                   cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t t, cudnnBackendDescriptor_t y,
                   int64_t axis, std::vector<cudnnBackendDescriptor_t> &ops, int line) {
        cudnnBackendDescriptor_t pw = create(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, line);
        set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pointwise mode", line);
        set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec, "pointwise precision", line);
        if (axis >= 0) set(pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis, "pointwise axis", line);
        finalize(pw, "pointwise finalize", line);
        cudnnBackendDescriptor_t op = create(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, line);
        set(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw, "pw desc", line);
        set(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, "pw x", line);
        if (b) set(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b, "pw b", line);
        if (t) set(op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &t, "pw t", line);
        set(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y, "pw y", line);
        finalize(op, "pointwise operation finalize", line);
        ops.push_back(op);
    }
    void reduction(cudnnReduceTensorOp_t mode, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y,
                   std::vector<cudnnBackendDescriptor_t> &ops, int line) {
        const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
        cudnnBackendDescriptor_t r = create(CUDNN_BACKEND_REDUCTION_DESCRIPTOR, line);
        set(r, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode, "reduction op", line);
        set(r, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &prec, "reduction precision", line);
        finalize(r, "reduction finalize", line);
        cudnnBackendDescriptor_t op = create(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, line);
        set(op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &r, "reduction desc", line);
        set(op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, "reduction x", line);
        set(op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y, "reduction y", line);
        finalize(op, "reduction operation finalize", line);
        ops.push_back(op);
    }
    void matmul(cudnnBackendDescriptor_t a, cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t c,
                std::vector<cudnnBackendDescriptor_t> &ops, int line) {
        const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
        cudnnBackendDescriptor_t mm = create(CUDNN_BACKEND_MATMUL_DESCRIPTOR, line);
        set(mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &prec, "matmul precision", line);
        finalize(mm, "matmul finalize", line);
        cudnnBackendDescriptor_t op = create(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, line);
        set(op, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mm, "matmul desc", line);
        set(op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &a, "matmul a", line);
        set(op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b, "matmul b", line);
        set(op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c, "matmul c", line);
        finalize(op, "matmul operation finalize", line);
        ops.push_back(op);
    }
};

// Builds the graph and an execution plan for p->key into p (status 0), or leaves the reason in p->why (status -1).
static void att_cudnn_build(AttCudnnPlan *p, cudnnHandle_t handle, int64_t ws_reserve) {
    const AttCudnnKey &s = p->key;
    AttCudnnBuilder g{p, p->why};
    const int64_t B = s.B, Tq = s.Tq, Tk = s.Tk, NH = s.NH, HS = s.HS, C = NH * HS;
    const cudnnDataType_t BF16 = CUDNN_DATA_BFLOAT16, F32 = CUDNN_DATA_FLOAT, I32 = CUDNN_DATA_INT32,
                          BOOL = CUDNN_DATA_BOOLEAN;
    std::vector<cudnnBackendDescriptor_t> ops;

    // Caller tensors (bf16 copies in ws): (b, h, s, d) with strides (T*C, HS, C, 1).
    const int64_t q_dims[4] = {B, NH, Tq, HS}, q_strides[4] = {Tq * C, HS, C, 1};
    const int64_t kt_dims[4] = {B, NH, HS, Tk}, kt_strides[4] = {Tk * C, HS, 1, C};  // K^T: last strides swapped
    const int64_t v_dims[4] = {B, NH, Tk, HS}, v_strides[4] = {Tk * C, HS, C, 1};
    cudnnBackendDescriptor_t tQ = g.tensor(UID_Q, BF16, q_dims, q_strides, false, false, __LINE__);
    cudnnBackendDescriptor_t tK = g.tensor(UID_K, BF16, kt_dims, kt_strides, false, false, __LINE__);
    cudnnBackendDescriptor_t tV = g.tensor(UID_V, BF16, v_dims, v_strides, false, false, __LINE__);
    cudnnBackendDescriptor_t tO = g.tensor(UID_O, BF16, q_dims, q_strides, false, false, __LINE__);
    cudnnBackendDescriptor_t tScale = g.scalar(UID_SCALE, F32, __LINE__);

    // Scores, scaled.
    cudnnBackendDescriptor_t s1 = g.virt(F32, B, NH, Tq, Tk, __LINE__);
    g.matmul(tQ, tK, s1, ops, __LINE__);
    cudnnBackendDescriptor_t s2 = g.virt(F32, B, NH, Tq, Tk, __LINE__);
    g.pointwise(CUDNN_POINTWISE_MUL, F32, s1, tScale, nullptr, s2, -1, ops, __LINE__);

    // Causal mask: keep key j for query i when i + shift >= j.
    cudnnBackendDescriptor_t masked = s2;
    if (s.causal) {
        cudnnBackendDescriptor_t row = g.virt(I32, B, NH, Tq, Tk, __LINE__);
        g.pointwise(CUDNN_POINTWISE_GEN_INDEX, I32, s2, nullptr, nullptr, row, 2, ops, __LINE__);
        cudnnBackendDescriptor_t col = g.virt(I32, B, NH, Tq, Tk, __LINE__);
        g.pointwise(CUDNN_POINTWISE_GEN_INDEX, I32, s2, nullptr, nullptr, col, 3, ops, __LINE__);
        p->shift = s.Tk > s.Tq ? s.Tk - s.Tq : s.Tq - s.Tk;
        if (p->shift > 0) {
            cudnnBackendDescriptor_t tShift = g.scalar(UID_SHIFT, I32, __LINE__);
            cudnnBackendDescriptor_t row2 = g.virt(I32, B, NH, Tq, Tk, __LINE__);
            g.pointwise(CUDNN_POINTWISE_ADD, I32, row, tShift, nullptr, row2, 3, ops, __LINE__);
            row = row2;
        }
        cudnnBackendDescriptor_t keep = g.virt(BOOL, B, NH, Tq, Tk, __LINE__);
        g.pointwise(CUDNN_POINTWISE_CMP_GE, BOOL, row, col, nullptr, keep, -1, ops, __LINE__);
        cudnnBackendDescriptor_t tNegInf = g.scalar(UID_NEG_INF, F32, __LINE__);
        masked = g.virt(F32, B, NH, Tq, Tk, __LINE__);
        g.pointwise(CUDNN_POINTWISE_BINARY_SELECT, F32, s2, tNegInf, keep, masked, -1, ops, __LINE__);
    }

    // Softmax over keys.
    cudnnBackendDescriptor_t mx = g.virt(F32, B, NH, Tq, 1, __LINE__);
    g.reduction(CUDNN_REDUCE_TENSOR_MAX, masked, mx, ops, __LINE__);
    cudnnBackendDescriptor_t sub = g.virt(F32, B, NH, Tq, Tk, __LINE__);
    g.pointwise(CUDNN_POINTWISE_SUB, F32, masked, mx, nullptr, sub, -1, ops, __LINE__);
    cudnnBackendDescriptor_t ex = g.virt(F32, B, NH, Tq, Tk, __LINE__);
    g.pointwise(CUDNN_POINTWISE_EXP, F32, sub, nullptr, nullptr, ex, -1, ops, __LINE__);
    cudnnBackendDescriptor_t sum = g.virt(F32, B, NH, Tq, 1, __LINE__);
    g.reduction(CUDNN_REDUCE_TENSOR_ADD, ex, sum, ops, __LINE__);
    cudnnBackendDescriptor_t prob = g.virt(F32, B, NH, Tq, Tk, __LINE__);
    g.pointwise(CUDNN_POINTWISE_DIV, F32, ex, sum, nullptr, prob, -1, ops, __LINE__);

    // Output.
    g.matmul(prob, tV, tO, ops, __LINE__);

    cudnnBackendDescriptor_t graph = g.create(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, __LINE__);
    g.set(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, "graph handle", __LINE__);
    g.set(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, (int64_t)ops.size(), ops.data(),
          "graph ops", __LINE__);
    g.finalize(graph, "operation graph finalize (cuDNN rejected the attention graph)", __LINE__);
    if (!g.ok) {
        p->status = -1;
        return;
    }

    // Engine configs from heuristics; the first that builds a plan within the workspace reserve.
    int64_t smallest_over = -1;
    const cudnnBackendHeurMode_t modes[2] = {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK};
    for (int m = 0; m < 2 && !p->plan; m++) {
        cudnnBackendDescriptor_t heur = nullptr;
        if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur) != CUDNN_STATUS_SUCCESS) continue;
        int64_t n = 0;
        bool heur_ok =
            cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                     &graph) == CUDNN_STATUS_SUCCESS &&
            cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &modes[m]) ==
                CUDNN_STATUS_SUCCESS &&
            cudnnBackendFinalize(heur) == CUDNN_STATUS_SUCCESS &&
            cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &n,
                                     nullptr) == CUDNN_STATUS_SUCCESS;
        std::vector<cudnnBackendDescriptor_t> cfgs;
        if (heur_ok && n > 0) {
            cfgs.assign((size_t)n, nullptr);
            for (int64_t i = 0; i < n && heur_ok; i++)
                heur_ok = cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfgs[(size_t)i]) ==
                          CUDNN_STATUS_SUCCESS;
            int64_t got = 0;
            if (heur_ok)
                heur_ok = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                                   n, &got, cfgs.data()) == CUDNN_STATUS_SUCCESS;
            for (int64_t i = 0; heur_ok && i < got && !p->plan; i++) {
                cudnnBackendDescriptor_t plan = nullptr;
                if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan) !=
                    CUDNN_STATUS_SUCCESS)
                    break;
                int64_t ws = -1;
                const bool built =
                    cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle) ==
                        CUDNN_STATUS_SUCCESS &&
                    cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                             CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfgs[(size_t)i]) ==
                        CUDNN_STATUS_SUCCESS &&
                    cudnnBackendFinalize(plan) == CUDNN_STATUS_SUCCESS &&
                    cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1,
                                             nullptr, &ws) == CUDNN_STATUS_SUCCESS;
                if (built && ws >= 0 && ws <= ws_reserve) {
                    p->plan = plan;
                    p->ws_bytes = ws;
                    p->descs.push_back(plan);
                    p->descs.push_back(cfgs[(size_t)i]);  // the plan's config stays alive with it
                    cfgs[(size_t)i] = nullptr;
                } else {
                    if (built && (smallest_over < 0 || ws < smallest_over)) smallest_over = ws;
                    cudnnBackendDestroyDescriptor(plan);
                }
            }
        }
        for (cudnnBackendDescriptor_t c : cfgs)
            if (c) cudnnBackendDestroyDescriptor(c);
        cudnnBackendDestroyDescriptor(heur);
    }
    if (p->plan) {
        p->status = 0;
        return;
    }
    p->status = -1;
    if (smallest_over > 0)
        snprintf(p->why, AVT_ERR_LEN,
                 "cuDNN attention: every engine for B %d Tq %d Tk %d NH %d HS %d causal %d needs %lld bytes of "
                 "workspace, more than the %lld attention_cudnn_ws_floats reserves",
                 s.B, s.Tq, s.Tk, s.NH, s.HS, s.causal, (long long)smallest_over, (long long)ws_reserve);
    else {
        char last[256];
        last[0] = '\0';
        cudnnGetLastErrorString(last, sizeof last);
        snprintf(p->why, AVT_ERR_LEN,
                 "cuDNN attention: heuristics found no engine for B %d Tq %d Tk %d NH %d HS %d causal %d%s%s", s.B,
                 s.Tq, s.Tk, s.NH, s.HS, s.causal, last[0] ? ": " : "", last);
    }
}

// ---- process state: the handle and the plan cache ----
static std::mutex att_cudnn_mutex;
static cudnnHandle_t att_cudnn_handle = nullptr;
static int att_cudnn_device = -1;
static AttCudnnPlan att_cudnn_plans[ATT_CUDNN_CACHE];
static int att_cudnn_next = 0;  // round-robin slot to evict next

int attention_forward_cudnn(float *out, float *ws, const float *q, const float *k, const float *v, int causal, int B,
                            int Tq, int Tk, int NH, int HS, cudaStream_t stream, AvtErr *err) {
    if (B < 1 || Tq < 1 || Tk < 1 || NH < 1 || HS < 1)
        return avt_err_set(err, "cuDNN attention: bad shape B %d Tq %d Tk %d NH %d HS %d", B, Tq, Tk, NH, HS);
    if (HS % 8 != 0)
        return avt_err_set(err, "cuDNN attention needs a head size that is a multiple of 8 (bf16 kernels), got %d",
                           HS);
    if (HS > ATT_CUDNN_HS_MAX)
        return avt_err_set(err, "cuDNN attention supports head sizes up to %d, got %d", ATT_CUDNN_HS_MAX, HS);
    if ((uintptr_t)ws % 16 != 0) return avt_err_set(err, "cuDNN attention: ws must be 16-byte aligned");
    const size_t ver = cudnnGetVersion();
    if (ver < 90000) return avt_err_set(err, "cuDNN attention needs cuDNN 9 or newer, found version %zu", ver);

    std::lock_guard<std::mutex> lock(att_cudnn_mutex);
    int ndev = 0, dev = -1;
    cudaError_t ce = cudaGetDeviceCount(&ndev);
    if (ce == cudaSuccess && ndev > 0) ce = cudaGetDevice(&dev);
    if (ce != cudaSuccess || ndev < 1) {
        (void)cudaGetLastError();  // not sticky: clear it so later launch checks do not see it
        return avt_err_set(err, "cuDNN attention: no CUDA device (%s)",
                           ce != cudaSuccess ? cudaGetErrorString(ce) : "none found");
    }
    if (!att_cudnn_handle) {
        const cudnnStatus_t cs = cudnnCreate(&att_cudnn_handle);
        if (cs != CUDNN_STATUS_SUCCESS) {
            att_cudnn_handle = nullptr;
            return avt_err_set(err, "cuDNN attention: cudnnCreate failed: %s", cudnnGetErrorString(cs));
        }
        att_cudnn_device = dev;
    }
    if (dev != att_cudnn_device)
        return avt_err_set(err, "cuDNN attention: the handle was created on device %d, called on device %d",
                           att_cudnn_device, dev);

    const AttCudnnLayout L = att_cudnn_layout(B, Tq, Tk, NH, HS);
    const AttCudnnKey key{dev, B, Tq, Tk, NH, HS, causal ? 1 : 0};
    AttCudnnPlan *p = nullptr;
    for (AttCudnnPlan &c : att_cudnn_plans)
        if (c.used && c.key == key) p = &c;
    if (!p) {
        p = &att_cudnn_plans[att_cudnn_next];
        att_cudnn_next = (att_cudnn_next + 1) % ATT_CUDNN_CACHE;
        p->release();
        p->used = true;
        p->key = key;
        p->why[0] = '\0';
        p->status = 0;
        p->shift = 0;
        p->ws_bytes = 0;
        att_cudnn_build(p, att_cudnn_handle, (int64_t)L.work_bytes);
        if (p->status != 0) {  // keep the refusal but not the half-built descriptors
            for (cudnnBackendDescriptor_t d : p->descs) cudnnBackendDestroyDescriptor(d);
            p->descs.clear();
            p->plan = nullptr;
        }
    }
    if (p->status != 0) return avt_err_set(err, "%s", p->why);

    // bf16 copies in, the fused kernel, fp32 out.
    const size_t C = (size_t)NH * HS, nq = (size_t)B * Tq * C, nk = (size_t)B * Tk * C;
    char *base = (char *)ws;
    __nv_bfloat16 *qb = (__nv_bfloat16 *)(base + L.q), *kb = (__nv_bfloat16 *)(base + L.k),
                  *vb = (__nv_bfloat16 *)(base + L.v), *ob = (__nv_bfloat16 *)(base + L.o);
    att_cudnn_to_bf16(qb, q, nq, stream);
    att_cudnn_to_bf16(kb, k, nk, stream);
    att_cudnn_to_bf16(vb, v, nk, stream);

    float scale = 1.0f / sqrtf((float)HS);
    float neg_inf = ver >= 91000 ? -INFINITY : -FLT_MAX;  // what the cudnn-frontend passes for masked scores
    int32_t shift = p->shift;
    int64_t uids[7] = {UID_Q, UID_K, UID_V, UID_O, UID_SCALE, UID_NEG_INF, UID_SHIFT};
    void *ptrs[7] = {qb, kb, vb, ob, &scale, &neg_inf, &shift};
    const int64_t n_uids = !causal ? 5 : p->shift > 0 ? 7 : 6;
    void *work = p->ws_bytes > 0 ? (void *)(base + L.work) : nullptr;

    cudnn_check(cudnnSetStream(att_cudnn_handle, stream));
    cudnnBackendDescriptor_t pack = nullptr;
    cudnn_check(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack));
    cudnn_check(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n_uids, uids));
    cudnn_check(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n_uids,
                                         ptrs));
    cudnn_check(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &work));
    cudnn_check(cudnnBackendFinalize(pack));
    cudnn_check(cudnnBackendExecute(att_cudnn_handle, p->plan, pack));
    cudnn_check(cudnnBackendDestroyDescriptor(pack));

    att_cudnn_to_f32(out, ob, nq, stream);
    return 0;
}

#endif
