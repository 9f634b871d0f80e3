"""Looking at results: learning-curve plots and summaries."""
