# rules for the synthesize stage
