# rules for the evaluate stage
