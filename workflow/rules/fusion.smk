# rules for the fusion stage
