"""The P2P-DI handout's timing experiment (Task 1 and Task 2), also run over P2P-CI."""
