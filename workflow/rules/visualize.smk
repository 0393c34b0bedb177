# rules for the visualize stage
