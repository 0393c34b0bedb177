# rules for the flow stage
