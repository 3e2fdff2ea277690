//! The rules of the service in pure code: plates, masking of personal data, the registry
//! records. No I/O and no async here; time comes in as arguments.

pub mod calendar;
pub mod documents;
pub mod filing;
pub mod masking;
pub mod payment;
pub mod plate;
pub mod qr;
pub mod registry;
pub mod review;
pub mod violation;
