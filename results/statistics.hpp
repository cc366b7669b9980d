#pragma once
// Statistics of the report: the Student t distribution (CDF and quantile, through the regularized
// incomplete beta function) and the paired t-test of two experiments evaluated on the same outer
// folds. No dependency beyond <cmath>; checked against scipy in tests/unit/test_results.cpp.
#include <cstdint>
#include <vector>

namespace diffpool {

// I_x(a, b) = B(x; a, b) / B(a, b), for a, b > 0 and 0 <= x <= 1 (Numerical Recipes 6.4: the
// continued fraction, evaluated by the modified Lentz method, on the side of x where it converges
// fast). Throws diffpool::Error (an internal error) for arguments outside that domain.
double regularized_incomplete_beta(double a, double b, double x);

// P(T <= t) for T ~ Student t with `degrees_of_freedom` > 0 (not necessarily an integer):
// with x = df / (df + t^2), P(|T| >= |t|) = I_x(df/2, 1/2).
double student_t_cdf(double t, double degrees_of_freedom);

// The t with P(T <= t) = p, 0 < p < 1 (bracketing and bisection on student_t_cdf to the last bit;
// monotone, so it always converges). p = 0.5 gives 0.
double student_t_quantile(double p, double degrees_of_freedom);

// The paired comparison of two experiments on the same folds: differences d_i = a_i - b_i,
// their mean, the sample standard deviation (n - 1), t = mean / (sd / sqrt(n)) with n - 1 degrees
// of freedom, the two-sided p-value of the paired t-test (scipy.stats.ttest_rel) and the
// confidence interval mean +- t_{(1+level)/2, n-1} sd / sqrt(n).
// With every difference equal (sd = 0): t = +-inf and p = 0 when the mean is not 0, t and p NaN
// when it is (scipy's convention); the interval is [mean, mean].
struct PairedTTest {
  int64_t n = 0;
  double mean_difference = 0;
  double sd_difference = 0;  // sample standard deviation of the differences
  double t = 0;
  double degrees_of_freedom = 0;
  double p_value = 0;        // two-sided
  double level = 0.95;
  double ci_low = 0, ci_high = 0;
};

// Needs a.size() == b.size() >= 2 (InputError otherwise: the message gives both sizes).
PairedTTest paired_t_test(const std::vector<double>& a, const std::vector<double>& b, double level = 0.95);

}  // namespace diffpool
