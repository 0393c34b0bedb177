# rules for the summary stage
