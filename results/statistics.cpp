// The t distribution and the paired t-test. See statistics.hpp.
//
// Student t with v degrees of freedom (Abramowitz and Stegun 26.7.1, 26.5.27):
//   P(|T| >= |t|) = I_x(v/2, 1/2),  x = v / (v + t^2)
// so CDF(t) = 1 - I_x(v/2, 1/2) / 2 for t >= 0 and I_x(v/2, 1/2) / 2 for t < 0.
//
// The regularized incomplete beta function by its continued fraction (Numerical Recipes 6.4):
//   I_x(a, b) = x^a (1-x)^b / (a B(a, b)) * 1 / (1 + d_1 / (1 + d_2 / (1 + ...)))
//   d_{2m+1} = -(a+m)(a+b+m) x / ((a+2m)(a+2m+1)),  d_{2m} = m (b-m) x / ((a+2m-1)(a+2m))
// which converges quickly for x < (a+1)/(a+b+2); above that, I_x(a, b) = 1 - I_{1-x}(b, a).
#include "results/statistics.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "engine/core/error.hpp"

namespace diffpool {

namespace {

// The continued fraction above by the modified Lentz method.
double beta_continued_fraction(double a, double b, double x) {
  constexpr int kMaxIterations = 10000;
  constexpr double kEpsilon = 2 * std::numeric_limits<double>::epsilon();
  constexpr double kTiny = 1e-300;  // keeps the Lentz denominators away from 0
  const double qab = a + b, qap = a + 1.0, qam = a - 1.0;
  double c = 1.0;
  double d = 1.0 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= kMaxIterations; ++m) {
    const double m2 = 2.0 * m;
    // Even step d_{2m}.
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    // Odd step d_{2m+1}.
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) <= kEpsilon) return h;
  }
  throw_internal(__FILE__, __LINE__,
                 fmt::format("the incomplete beta continued fraction did not converge for a={}, b={}, x={}", a, b, x));
}

}  // namespace

double regularized_incomplete_beta(double a, double b, double x) {
  if (!(a > 0) || !(b > 0) || !(x >= 0) || !(x <= 1) || !std::isfinite(a) || !std::isfinite(b)) {
    throw_internal(__FILE__, __LINE__,
                   fmt::format("regularized_incomplete_beta needs a, b > 0 and 0 <= x <= 1, got a={}, b={}, x={}", a, b, x));
  }
  if (x == 0.0 || x == 1.0) return x;
  // ln of x^a (1-x)^b / B(a, b).
  const double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  const double front = std::exp(log_front);
  if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_continued_fraction(a, b, x) / a;
  return 1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b;
}

double student_t_cdf(double t, double degrees_of_freedom) {
  const double v = degrees_of_freedom;
  if (!(v > 0)) throw_internal(__FILE__, __LINE__, fmt::format("student_t_cdf needs degrees of freedom > 0, got {}", v));
  if (std::isnan(t)) return t;
  if (std::isinf(t)) return t > 0 ? 1.0 : 0.0;
  // x = v / (v + t^2), written so that a huge t gives a tiny x instead of 0 (t^2 may overflow).
  const double x = t * t > v * 1e300 ? 0.0 : v / (v + t * t);
  const double tail = 0.5 * regularized_incomplete_beta(0.5 * v, 0.5, x);  // P(T >= |t|)
  return t >= 0 ? 1.0 - tail : tail;
}

double student_t_quantile(double p, double degrees_of_freedom) {
  const double v = degrees_of_freedom;
  if (!(v > 0) || !(p > 0) || !(p < 1)) {
    throw_internal(__FILE__, __LINE__,
                   fmt::format("student_t_quantile needs 0 < p < 1 and degrees of freedom > 0, got p={}, df={}", p, v));
  }
  if (p == 0.5) return 0.0;
  // By symmetry solve for the upper tail: t > 0 with CDF(t) = max(p, 1 - p).
  const double target = p > 0.5 ? p : 1.0 - p;
  double low = 0.0, high = 1.0;
  while (student_t_cdf(high, v) < target) {
    low = high;
    high *= 2.0;
    if (!std::isfinite(high)) break;
  }
  // Bisection until the interval cannot shrink any further in double precision.
  for (int i = 0; i < 2000; ++i) {
    const double middle = 0.5 * (low + high);
    if (middle <= low || middle >= high) break;
    if (student_t_cdf(middle, v) < target) low = middle;
    else high = middle;
  }
  const double t = 0.5 * (low + high);
  return p > 0.5 ? t : -t;
}

PairedTTest paired_t_test(const std::vector<double>& a, const std::vector<double>& b, double level) {
  if (a.size() != b.size() || a.size() < 2) {
    throw InputError(fmt::format("a paired t-test needs two equally long series of at least 2 values, got {} and {}",
                                 a.size(), b.size()));
  }
  PairedTTest r;
  r.n = static_cast<int64_t>(a.size());
  r.level = level;
  const double n = static_cast<double>(a.size());
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  for (const double x : d) r.mean_difference += x;
  r.mean_difference /= n;
  double squares = 0;
  for (const double x : d) squares += (x - r.mean_difference) * (x - r.mean_difference);
  r.sd_difference = std::sqrt(squares / (n - 1.0));
  r.degrees_of_freedom = n - 1.0;
  const double standard_error = r.sd_difference / std::sqrt(n);
  const double quantile = student_t_quantile(0.5 * (1.0 + level), r.degrees_of_freedom);
  r.ci_low = r.mean_difference - quantile * standard_error;
  r.ci_high = r.mean_difference + quantile * standard_error;
  if (standard_error == 0.0) {
    r.ci_low = r.ci_high = r.mean_difference;
    if (r.mean_difference == 0.0) {
      r.t = r.p_value = std::numeric_limits<double>::quiet_NaN();
    } else {
      r.t = std::copysign(std::numeric_limits<double>::infinity(), r.mean_difference);
      r.p_value = 0.0;
    }
    return r;
  }
  r.t = r.mean_difference / standard_error;
  // Two-sided: P(|T| >= |t|) = I_x(v/2, 1/2) directly (no 1 - CDF cancellation for small p).
  const double v = r.degrees_of_freedom;
  const double x = r.t * r.t > v * 1e300 ? 0.0 : v / (v + r.t * r.t);
  r.p_value = regularized_incomplete_beta(0.5 * v, 0.5, x);
  return r;
}

}  // namespace diffpool
