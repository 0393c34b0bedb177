# rules for the train stage
