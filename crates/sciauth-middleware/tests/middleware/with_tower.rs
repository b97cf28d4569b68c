//! `AuthLayer` around a hyper-util client and around a plain `service_fn`.
