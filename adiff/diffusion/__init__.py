"""The forward processes (what x_t is) and what a network predicts: schedules, processes, parameterisation, losses."""
