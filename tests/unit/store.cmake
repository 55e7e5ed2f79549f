# The LMDB store's tests (node/store.c): unit tests, and kill -9 durability.
chp_test(test_store SOURCES test_store.c LIBS chapar-store chapar-testutil TIMEOUT 120)
chp_test(test_store_crash SOURCES test_store_crash.c LIBS chapar-store TIMEOUT 120)
chp_test(test_msg SOURCES test_msg.c LIBS chapar-msg chapar-testutil TIMEOUT 120)
# No block the messaging layer frees holds a secret: malloc and free of the
# code linked in statically are wrapped at link time (also in the ASan build).
chp_test(test_msg_secrets SOURCES test_msg_secrets.c LIBS chapar-msg TIMEOUT 120)
target_link_options(test_msg_secrets PRIVATE
  -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free)
