# The LMDB store's tests (node/store.c): unit tests, and kill -9 durability.
chp_test(test_store SOURCES test_store.c LIBS chapar-store TIMEOUT 120)
chp_test(test_store_crash SOURCES test_store_crash.c LIBS chapar-store TIMEOUT 120)
chp_test(test_msg SOURCES test_msg.c LIBS chapar-msg TIMEOUT 120)
