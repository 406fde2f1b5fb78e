// CPU tile rasterizer for projected 3D Gaussians, forward and backward.
//
// It reproduces what gsplat 1.5.3 does after its projection kernel (isect_tiles +
// rasterize_to_pixels, "classic" mode), so an avatar trained on one backend renders the
// same on the other. The projection itself (EWA, culling, radii) lives in
// avatar/raster/projection.py, in differentiable torch.
//
//   1. bin_tiles: every Gaussian goes to each 16x16 tile its footprint box
//      (mean2d +- radius) touches; each tile's list is sorted front to back by view depth
//      as float32, ties by index (gsplat radix-sorts (tile, float depth bits) keys, stably).
//   2. forward: per pixel of a tile, walk the tile's list front to back and composite
//      alpha = min(0.999, opacity * exp(-sigma)); skip alpha < 1/255 or sigma < 0; stop
//      before the Gaussian that would bring transmittance to <= 1e-4.
//   3. backward: per pixel, walk the list back to front from the last Gaussian that
//      contributed, recovering each Gaussian's transmittance by division (as gsplat's
//      backward does) and accumulating gradients of means2d, conics, opacities, features.
//
// Tiles are independent, so both passes run in parallel over tiles. Backward gradients are
// first written per tile-intersection and then summed per Gaussian in a fixed order, so the
// result does not depend on the thread count or scheduling.
//
// Speed: a Gaussian's footprint is a few pixels while a tile is 16x16, so each Gaussian is
// only evaluated on the pixels of the tile inside an ellipse that provably contains every
// pixel where its alpha can reach 1/255 (plus a margin). Pixels outside it would be skipped by
// the alpha test anyway, so the result is the same as evaluating the whole tile.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <tuple>
#include <vector>

namespace {

constexpr int kTile = 16;
constexpr int kTilePixels = kTile * kTile;
// gsplat's thresholds.
constexpr double kAlphaThreshold = 1.0 / 255.0;
constexpr double kMaxAlpha = 0.999;
constexpr double kMinTransmittance = 1e-4;
// Evaluated region: sigma <= ln(255 opacity) + kCutMargin, an ellipse. Outside it
// alpha < 0.96/255, which gsplat's alpha test rejects; the margins absorb rounding.
constexpr float kCutMargin = 0.05f;
constexpr float kSpanMargin = 0.01f;  // pixels

struct TileGrid {
    int64_t width, height, tiles_x, tiles_y;
    TileGrid(int64_t w, int64_t h)
        : width(w), height(h), tiles_x((w + kTile - 1) / kTile), tiles_y((h + kTile - 1) / kTile) {}
    int64_t count() const { return tiles_x * tiles_y; }
};

// One tile's pixel rectangle [x0, x1) x [y0, y1).
struct TileBox {
    int64_t x0, y0, x1, y1;
    TileBox(int64_t tile, const TileGrid& grid) {
        x0 = (tile % grid.tiles_x) * kTile;
        y0 = (tile / grid.tiles_x) * kTile;
        x1 = std::min(x0 + kTile, grid.width);
        y1 = std::min(y0 + kTile, grid.height);
    }
    int64_t w() const { return x1 - x0; }
    int64_t pixels() const { return (x1 - x0) * (y1 - y0); }
};

// Tiles [x0, x1) x [y0, y1) touched by one Gaussian.
struct TileRange {
    int64_t x0, x1, y0, y1;
};

// gsplat casts floor/ceil results to uint32, which saturates negatives to 0 on the GPU.
int64_t clamp_tile(float v, int64_t hi) {
    if (!(v > 0.f)) return 0;
    if (v >= static_cast<float>(hi)) return hi;
    return static_cast<int64_t>(v);
}

// Computed in float exactly like gsplat's intersect_tile_kernel, so boundary cases agree.
TileRange tile_range(float mx, float my, int32_t rx, int32_t ry, const TileGrid& grid) {
    const float size = static_cast<float>(kTile);
    const float tx = mx / size, ty = my / size;
    const float trx = static_cast<float>(rx) / size, try_ = static_cast<float>(ry) / size;
    return {clamp_tile(std::floor(tx - trx), grid.tiles_x), clamp_tile(std::ceil(tx + trx), grid.tiles_x),
            clamp_tile(std::floor(ty - try_), grid.tiles_y), clamp_tile(std::ceil(ty + try_), grid.tiles_y)};
}

// One projected Gaussian packed for the tile loops (one cache line): what gsplat evaluates per
// pixel, in the kernel's precision, plus float bounds of the ellipse of pixels to evaluate.
template <typename scalar_t>
struct Splat {
    scalar_t x, y;  // 2D mean, pixels
    scalar_t a, b, c;  // conic: sigma = 0.5 (a dx² + c dy²) + b dx dy
    scalar_t opacity;
    scalar_t sigma_cut;  // larger sigma gives alpha < 1/255: skip the exp
    float cut;  // the same in float, for the spans
    float half_h;  // the ellipse spans rows y +- half_h
    bool never;  // opacity too low to ever reach alpha 1/255
    bool unbounded;  // degenerate conic: evaluate every pixel of the tile
};

template <typename scalar_t>
std::vector<Splat<scalar_t>> pack_splats(const at::Tensor& means2d, const at::Tensor& conics,
                                         const at::Tensor& opacities) {
    const int64_t n = means2d.size(0);
    const scalar_t* xy = means2d.data_ptr<scalar_t>();
    const scalar_t* q = conics.data_ptr<scalar_t>();
    const scalar_t* op = opacities.data_ptr<scalar_t>();
    std::vector<Splat<scalar_t>> out(n);
    for (int64_t g = 0; g < n; ++g) {
        Splat<scalar_t>& s = out[g];
        s.x = xy[2 * g], s.y = xy[2 * g + 1];
        s.a = q[3 * g], s.b = q[3 * g + 1], s.c = q[3 * g + 2];
        s.opacity = op[g];
        const double cut = std::log(static_cast<double>(s.opacity) / kAlphaThreshold);
        s.never = !(cut >= 0.0);
        s.cut = static_cast<float>(cut) + kCutMargin;
        s.sigma_cut = static_cast<scalar_t>(s.cut);
        const double det = static_cast<double>(s.a) * s.c - static_cast<double>(s.b) * s.b;
        s.unbounded = !(s.a > 0 && det > 0.0 && std::isfinite(det));
        // max |dy| on the ellipse is sqrt(2 cut Sigma_yy), Sigma = conic^-1, Sigma_yy = a / det.
        s.half_h = s.unbounded ? std::numeric_limits<float>::infinity()
                               : static_cast<float>(std::sqrt(2.0 * s.cut * s.a / det)) + kSpanMargin;
    }
    return out;
}

// Pixels [lo, hi] (clipped to [first, end)) whose centres (index + 0.5) lie in [from, to].
inline bool centres_within(float from, float to, int64_t first, int64_t end, int64_t& lo, int64_t& hi) {
    const float l = std::ceil(from - 0.5f), h = std::floor(to - 0.5f);
    lo = l > static_cast<float>(first) ? static_cast<int64_t>(l) : first;  // also when from is -inf/nan
    hi = h < static_cast<float>(end - 1) ? static_cast<int64_t>(h) : end - 1;
    return lo <= hi;
}

// Rows [lo, hi] of the tile that the Gaussian's ellipse reaches.
template <typename scalar_t>
inline bool row_range(const Splat<scalar_t>& s, int64_t first, int64_t end, int64_t& lo, int64_t& hi) {
    const float y = static_cast<float>(s.y);
    return centres_within(y - s.half_h, y + s.half_h, first, end, lo, hi);
}

// Columns [lo, hi] of the tile where the pixel row with centre py lies inside the ellipse:
// the roots of sigma(dx) = cut, a quadratic in dx = x - px at fixed dy = y - py.
template <typename scalar_t>
inline bool column_range(const Splat<scalar_t>& s, float py, int64_t first, int64_t end, int64_t& lo,
                         int64_t& hi) {
    if (s.unbounded) return centres_within(-INFINITY, INFINITY, first, end, lo, hi);
    const float a = static_cast<float>(s.a), b = static_cast<float>(s.b), c = static_cast<float>(s.c);
    const float x = static_cast<float>(s.x), dy = static_cast<float>(s.y) - py;
    const float disc = b * dy * b * dy - a * (c * dy * dy - 2.f * s.cut);
    if (disc < 0.f) return false;
    const float root = std::sqrt(disc), inv_a = 1.f / a;
    return centres_within(x + (b * dy - root) * inv_a - kSpanMargin, x + (b * dy + root) * inv_a + kSpanMargin,
                          first, end, lo, hi);
}

// gsplat's per-pixel evaluation, shared by forward and backward. Returns false when gsplat
// would skip this Gaussian at this pixel.
template <typename scalar_t>
inline bool evaluate(const Splat<scalar_t>& s, scalar_t px, scalar_t py, scalar_t& dx, scalar_t& dy,
                     scalar_t& vis, scalar_t& alpha) {
    dx = s.x - px;
    dy = s.y - py;
    const scalar_t sigma = scalar_t(0.5) * (s.a * dx * dx + s.c * dy * dy) + s.b * dx * dy;
    if (sigma > s.sigma_cut) return false;  // alpha < 1/255 for certain
    vis = std::exp(-sigma);
    alpha = std::min(static_cast<scalar_t>(kMaxAlpha), s.opacity * vis);
    return !(sigma < 0 || alpha < static_cast<scalar_t>(kAlphaThreshold));
}

// Calls visit(i, j) for each pixel of the tile inside the Gaussian's ellipse, row by row.
template <typename scalar_t, typename Visit>
inline void for_each_pixel(const Splat<scalar_t>& s, const TileBox& box, Visit&& visit) {
    int64_t i0, i1, j0, j1;
    if (s.never || !row_range(s, box.y0, box.y1, i0, i1)) return;
    for (int64_t i = i0; i <= i1; ++i) {
        if (!column_range(s, static_cast<float>(i) + 0.5f, box.x0, box.x1, j0, j1)) continue;
        for (int64_t j = j0; j <= j1; ++j) visit(i, j);
    }
}

void check_inputs(const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities,
                  const at::Tensor& features) {
    const int64_t n = means2d.size(0);
    TORCH_CHECK(means2d.dim() == 2 && means2d.size(1) == 2, "means2d must be (N, 2)");
    TORCH_CHECK(conics.dim() == 2 && conics.size(0) == n && conics.size(1) == 3, "conics must be (N, 3)");
    TORCH_CHECK(opacities.dim() == 1 && opacities.size(0) == n, "opacities must be (N,)");
    TORCH_CHECK(features.dim() == 2 && features.size(0) == n, "features must be (N, D)");
    for (const at::Tensor* t : {&means2d, &conics, &opacities, &features}) {
        TORCH_CHECK(t->is_contiguous() && t->device().is_cpu(), "inputs must be contiguous CPU tensors");
        TORCH_CHECK(t->scalar_type() == means2d.scalar_type(), "inputs must share one dtype");
    }
}

}  // namespace

// Returns (offsets (tiles + 1,) int32, ids (intersections,) int32): tile t's Gaussians,
// front to back, are ids[offsets[t]:offsets[t + 1]].
std::tuple<at::Tensor, at::Tensor> bin_tiles(const at::Tensor& means2d, const at::Tensor& radii,
                                             const at::Tensor& depths, int64_t width, int64_t height) {
    const TileGrid grid(width, height);
    const int64_t n = means2d.size(0);
    TORCH_CHECK(radii.scalar_type() == at::kInt && radii.is_contiguous() && radii.dim() == 2 &&
                    radii.size(0) == n && radii.size(1) == 2,
                "radii must be contiguous int32 (N, 2)");
    TORCH_CHECK(depths.dim() == 1 && depths.size(0) == n, "depths must be (N,)");
    // gsplat reads means2d and depths as float.
    const at::Tensor xy = means2d.to(at::kFloat).contiguous();
    const at::Tensor z = depths.to(at::kFloat).contiguous();
    const float* xy_p = xy.data_ptr<float>();
    const int32_t* r_p = radii.data_ptr<int32_t>();
    const float* z_p = z.data_ptr<float>();

    // Sort key (depth bits, index): positive floats order like their bit patterns, and the
    // index breaks ties as a stable sort would.
    std::vector<uint64_t> keys(n);
    for (int64_t g = 0; g < n; ++g) {
        uint32_t bits;
        std::memcpy(&bits, z_p + g, sizeof bits);
        keys[g] = (static_cast<uint64_t>(bits) << 32) | static_cast<uint32_t>(g);
    }
    std::sort(keys.begin(), keys.end());

    std::vector<TileRange> ranges(n);
    std::vector<int64_t> counts(grid.count() + 1, 0);
    for (int64_t g = 0; g < n; ++g) {
        if (r_p[2 * g] <= 0 || r_p[2 * g + 1] <= 0) {
            ranges[g] = {0, 0, 0, 0};
            continue;
        }
        ranges[g] = tile_range(xy_p[2 * g], xy_p[2 * g + 1], r_p[2 * g], r_p[2 * g + 1], grid);
        const TileRange& t = ranges[g];
        for (int64_t ty = t.y0; ty < t.y1; ++ty)
            for (int64_t tx = t.x0; tx < t.x1; ++tx) ++counts[ty * grid.tiles_x + tx + 1];
    }
    std::partial_sum(counts.begin(), counts.end(), counts.begin());
    TORCH_CHECK(counts.back() <= std::numeric_limits<int32_t>::max(), "too many tile intersections");

    at::Tensor offsets = at::empty({grid.count() + 1}, at::kInt);
    at::Tensor ids = at::empty({counts.back()}, at::kInt);
    int32_t* off_p = offsets.data_ptr<int32_t>();
    int32_t* ids_p = ids.data_ptr<int32_t>();
    for (int64_t t = 0; t <= grid.count(); ++t) off_p[t] = static_cast<int32_t>(counts[t]);
    std::vector<int64_t> cursor(counts.begin(), counts.end() - 1);
    for (uint64_t key : keys) {  // depth order, so every tile's list comes out sorted
        const int32_t g = static_cast<int32_t>(key & 0xffffffffu);
        const TileRange& t = ranges[g];
        for (int64_t ty = t.y0; ty < t.y1; ++ty)
            for (int64_t tx = t.x0; tx < t.x1; ++tx) ids_p[cursor[ty * grid.tiles_x + tx]++] = g;
    }
    return {offsets, ids};
}

template <typename scalar_t>
void forward_impl(const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities,
                  const at::Tensor& features, const at::Tensor& offsets, const at::Tensor& ids,
                  const TileGrid& grid, at::Tensor& image, at::Tensor& transmittance, at::Tensor& last) {
    const int64_t d = features.size(1);
    const scalar_t* feat = features.data_ptr<scalar_t>();
    const int32_t* off = offsets.data_ptr<int32_t>();
    const int32_t* id = ids.data_ptr<int32_t>();
    scalar_t* out_image = image.data_ptr<scalar_t>();
    scalar_t* out_t = transmittance.data_ptr<scalar_t>();
    int32_t* out_last = last.data_ptr<int32_t>();
    const std::vector<Splat<scalar_t>> splats = pack_splats<scalar_t>(means2d, conics, opacities);

    // Dynamic schedule: tiles on the face hold far more Gaussians than background tiles.
#pragma omp parallel for schedule(dynamic, 1) num_threads(at::get_num_threads())
    for (int64_t tile = 0; tile < grid.count(); ++tile) {
        const TileBox box(tile, grid);
        const int64_t w = box.w();
        scalar_t T[kTilePixels];
        int32_t last_k[kTilePixels];
        bool done[kTilePixels];
        std::vector<scalar_t> acc(box.pixels() * d, scalar_t(0));
        std::fill(T, T + kTilePixels, scalar_t(1));
        std::fill(last_k, last_k + kTilePixels, -1);
        std::fill(done, done + kTilePixels, false);
        int64_t remaining = box.pixels();

        for (int32_t k = off[tile]; k < off[tile + 1] && remaining > 0; ++k) {
            const int32_t g = id[k];
            const Splat<scalar_t>& s = splats[g];
            const scalar_t* f = feat + g * d;
            for_each_pixel(s, box, [&](int64_t i, int64_t j) {
                const int64_t p = (i - box.y0) * w + (j - box.x0);
                scalar_t dx, dy, vis, alpha;
                if (done[p] || !evaluate(s, scalar_t(j) + scalar_t(0.5), scalar_t(i) + scalar_t(0.5), dx, dy, vis,
                                         alpha))
                    return;
                const scalar_t next_t = T[p] * (scalar_t(1) - alpha);
                if (next_t <= static_cast<scalar_t>(kMinTransmittance)) {
                    done[p] = true;
                    --remaining;
                    return;
                }
                const scalar_t weight = alpha * T[p];
                scalar_t* a = acc.data() + p * d;
                for (int64_t c = 0; c < d; ++c) a[c] += f[c] * weight;
                T[p] = next_t;
                last_k[p] = k;
            });
        }

        for (int64_t i = box.y0; i < box.y1; ++i) {
            for (int64_t j = box.x0; j < box.x1; ++j) {
                const int64_t p = (i - box.y0) * w + (j - box.x0), pix = i * grid.width + j;
                std::copy(acc.data() + p * d, acc.data() + (p + 1) * d, out_image + pix * d);
                out_t[pix] = T[p];
                out_last[pix] = last_k[p];
            }
        }
    }
}

// Returns (image (H, W, D) without background, final transmittance (H, W),
// last (H, W) int32: index into ids of the last Gaussian composited at each pixel, or -1).
std::tuple<at::Tensor, at::Tensor, at::Tensor> rasterize_forward(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities,
    const at::Tensor& features, const at::Tensor& offsets, const at::Tensor& ids, int64_t width,
    int64_t height) {
    check_inputs(means2d, conics, opacities, features);
    const TileGrid grid(width, height);
    TORCH_CHECK(offsets.numel() == grid.count() + 1, "offsets do not match the image size");
    const auto opts = means2d.options();
    at::Tensor image = at::empty({height, width, features.size(1)}, opts);
    at::Tensor transmittance = at::empty({height, width}, opts);
    at::Tensor last = at::empty({height, width}, opts.dtype(at::kInt));
    AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "rasterize_forward", [&] {
        forward_impl<scalar_t>(means2d, conics, opacities, features, offsets, ids, grid, image,
                               transmittance, last);
    });
    return {image, transmittance, last};
}

template <typename scalar_t>
void backward_impl(const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities,
                   const at::Tensor& features, const at::Tensor& offsets, const at::Tensor& ids,
                   const at::Tensor& transmittance, const at::Tensor& last, const at::Tensor& v_image,
                   const at::Tensor& v_alpha, const TileGrid& grid, at::Tensor& v_means2d,
                   at::Tensor& v_conics, at::Tensor& v_opacities, at::Tensor& v_features) {
    const int64_t n = means2d.size(0), d = features.size(1), n_isect = ids.numel();
    const scalar_t* feat = features.data_ptr<scalar_t>();
    const int32_t* off = offsets.data_ptr<int32_t>();
    const int32_t* id = ids.data_ptr<int32_t>();
    const scalar_t* t_final = transmittance.data_ptr<scalar_t>();
    const int32_t* last_k = last.data_ptr<int32_t>();
    const scalar_t* g_image = v_image.data_ptr<scalar_t>();
    const scalar_t* g_alpha = v_alpha.data_ptr<scalar_t>();
    const std::vector<Splat<scalar_t>> splats = pack_splats<scalar_t>(means2d, conics, opacities);

    // Per-intersection gradients, one row [x, y, conic a, b, c, opacity, features...] per
    // intersection. Each intersection belongs to one tile, so tiles write without races; every
    // row is zeroed by its tile before use.
    const int64_t stride = 6 + d;
    std::unique_ptr<scalar_t[]> isect(new scalar_t[n_isect * stride]);

#pragma omp parallel for schedule(dynamic, 1) num_threads(at::get_num_threads())
    for (int64_t tile = 0; tile < grid.count(); ++tile) {
        const TileBox box(tile, grid);
        const int64_t w = box.w();
        scalar_t T[kTilePixels];
        // Per pixel: sum of feature * weight over the Gaussians behind the current one.
        std::vector<scalar_t> behind(box.pixels() * d, scalar_t(0));
        int32_t k_max = -1;
        for (int64_t i = box.y0; i < box.y1; ++i) {
            for (int64_t j = box.x0; j < box.x1; ++j) {
                const int64_t p = (i - box.y0) * w + (j - box.x0), pix = i * grid.width + j;
                T[p] = t_final[pix];
                k_max = std::max(k_max, last_k[pix]);
            }
        }
        std::fill(isect.get() + int64_t(off[tile]) * stride, isect.get() + int64_t(off[tile + 1]) * stride,
                  scalar_t(0));

        for (int32_t k = k_max; k >= off[tile]; --k) {
            const int32_t g = id[k];
            const Splat<scalar_t>& s = splats[g];
            const scalar_t* f = feat + g * d;
            scalar_t* v = isect.get() + int64_t(k) * stride;
            for_each_pixel(s, box, [&](int64_t i, int64_t j) {
                const int64_t pix = i * grid.width + j;
                scalar_t dx, dy, vis, alpha;
                if (last_k[pix] < k ||  // the pixel stopped before this Gaussian
                    !evaluate(s, scalar_t(j) + scalar_t(0.5), scalar_t(i) + scalar_t(0.5), dx, dy, vis, alpha))
                    return;
                const int64_t p = (i - box.y0) * w + (j - box.x0);
                // Transmittance in front of this Gaussian, undone from the one behind it.
                const scalar_t ra = scalar_t(1) / (scalar_t(1) - alpha);
                T[p] *= ra;
                const scalar_t t_here = T[p], weight = alpha * t_here;
                const scalar_t* gi = g_image + pix * d;
                scalar_t* b = behind.data() + p * d;
                scalar_t v_a = 0;
#pragma omp simd reduction(+ : v_a)
                for (int64_t c = 0; c < d; ++c) v_a += (f[c] * t_here - b[c] * ra) * gi[c];
                for (int64_t c = 0; c < d; ++c) {
                    v[6 + c] += weight * gi[c];
                    b[c] += f[c] * weight;
                }
                // The alpha output is 1 - prod(1 - alpha_i).
                v_a += t_final[pix] * ra * g_alpha[pix];
                if (s.opacity * vis <= static_cast<scalar_t>(kMaxAlpha)) {  // else alpha is clamped
                    const scalar_t v_sigma = -s.opacity * vis * v_a;
                    v[0] += v_sigma * (s.a * dx + s.b * dy);
                    v[1] += v_sigma * (s.b * dx + s.c * dy);
                    v[2] += scalar_t(0.5) * v_sigma * dx * dx;
                    v[3] += v_sigma * dx * dy;
                    v[4] += scalar_t(0.5) * v_sigma * dy * dy;
                    v[5] += vis * v_a;
                }
            });
        }
    }

    // Sum each Gaussian's intersections in index order: deterministic. A counting sort gives
    // every Gaussian its list of intersections so the sum can run in parallel over Gaussians.
    std::vector<int64_t> first(n + 1, 0);
    for (int64_t k = 0; k < n_isect; ++k) ++first[id[k] + 1];
    std::partial_sum(first.begin(), first.end(), first.begin());
    std::vector<int64_t> by_gaussian(n_isect), cursor(first.begin(), first.end() - 1);
    for (int64_t k = 0; k < n_isect; ++k) by_gaussian[cursor[id[k]]++] = k;

    scalar_t* o_xy = v_means2d.data_ptr<scalar_t>();
    scalar_t* o_conic = v_conics.data_ptr<scalar_t>();
    scalar_t* o_op = v_opacities.data_ptr<scalar_t>();
    scalar_t* o_feat = v_features.data_ptr<scalar_t>();
#pragma omp parallel for schedule(static) num_threads(at::get_num_threads())
    for (int64_t g = 0; g < n; ++g) {
        for (int64_t e = first[g]; e < first[g + 1]; ++e) {
            const scalar_t* v = isect.get() + by_gaussian[e] * stride;
            o_xy[2 * g] += v[0];
            o_xy[2 * g + 1] += v[1];
            for (int c = 0; c < 3; ++c) o_conic[3 * g + c] += v[2 + c];
            o_op[g] += v[5];
            for (int64_t c = 0; c < d; ++c) o_feat[g * d + c] += v[6 + c];
        }
    }
}

// Gradients of (image, alpha) w.r.t. (means2d, conics, opacities, features).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> rasterize_backward(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities,
    const at::Tensor& features, const at::Tensor& offsets, const at::Tensor& ids,
    const at::Tensor& transmittance, const at::Tensor& last, const at::Tensor& v_image,
    const at::Tensor& v_alpha, int64_t width, int64_t height) {
    check_inputs(means2d, conics, opacities, features);
    const TileGrid grid(width, height);
    TORCH_CHECK(offsets.numel() == grid.count() + 1, "offsets do not match the image size");
    TORCH_CHECK(v_image.is_contiguous() && v_alpha.is_contiguous(), "gradients must be contiguous");
    TORCH_CHECK(v_image.scalar_type() == means2d.scalar_type() && v_alpha.scalar_type() == means2d.scalar_type(),
                "gradients must match the inputs' dtype");
    at::Tensor v_means2d = at::zeros_like(means2d);
    at::Tensor v_conics = at::zeros_like(conics);
    at::Tensor v_opacities = at::zeros_like(opacities);
    at::Tensor v_features = at::zeros_like(features);
    AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "rasterize_backward", [&] {
        backward_impl<scalar_t>(means2d, conics, opacities, features, offsets, ids, transmittance, last,
                                v_image, v_alpha, grid, v_means2d, v_conics, v_opacities, v_features);
    });
    return {v_means2d, v_conics, v_opacities, v_features};
}

TORCH_LIBRARY(splatcam_raster, m) {
    m.def("bin_tiles", &bin_tiles);
    m.def("rasterize_forward", &rasterize_forward);
    m.def("rasterize_backward", &rasterize_backward);
}
