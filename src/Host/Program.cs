// The actorvisor program; commands arrive with the platform work.
return 0;
