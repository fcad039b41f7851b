"""The statistics of quality control, pure: intervals and sample sizes, answer matching, doubt ranking, targeted
draws and their weighted error rates, near-duplicate instructions, word diffs, and the charts that draw them."""
