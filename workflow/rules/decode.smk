# rules for the decode stage
