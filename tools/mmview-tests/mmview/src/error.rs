//! The error type of the crate: an errno value with a readable name.

use std::fmt;
use std::io;

/// An error returned by `mmview(2)`: the `errno` value the kernel reported.
///
/// It displays as the symbolic name followed by the usual description, for
/// example `EINVAL (Invalid argument)`, and converts into [`std::io::Error`].
///
/// ```
/// let err = mmview::Error::from_errno(libc::EINVAL);
/// assert!(err.is(libc::EINVAL));
/// assert_eq!(err.to_string(), "EINVAL (Invalid argument)");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error {
    errno: i32,
}

impl Error {
    /// Wraps a positive `errno` value (such as `libc::EINVAL`).
    pub const fn from_errno(errno: i32) -> Self {
        Error { errno }
    }

    /// The error of the last failed libc call of the calling thread.
    pub(crate) fn last_os_error() -> Self {
        Error::from_errno(
            io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        )
    }

    /// The `errno` value, e.g. `libc::EINVAL`.
    pub const fn errno(self) -> i32 {
        self.errno
    }

    /// Whether this error is `errno`: `err.is(libc::EPERM)`.
    pub const fn is(self, errno: i32) -> bool {
        self.errno == errno
    }

    /// The symbolic name (`"EINVAL"`), if the errno is one this crate knows.
    pub fn name(self) -> Option<&'static str> {
        lookup(self.errno).map(|(name, _)| name)
    }

    /// The usual description (`"Invalid argument"`), if the errno is known.
    pub fn description(self) -> Option<&'static str> {
        lookup(self.errno).map(|(_, text)| text)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match lookup(self.errno) {
            Some((name, text)) => write!(f, "{name} ({text})"),
            None => write!(f, "errno {}", self.errno),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "Error({name})"),
            None => write!(f, "Error({})", self.errno),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        io::Error::from_raw_os_error(err.errno)
    }
}

/// Name and glibc description of the errno values a caller is likely to meet.
fn lookup(errno: i32) -> Option<(&'static str, &'static str)> {
    Some(match errno {
        libc::EPERM => ("EPERM", "Operation not permitted"),
        libc::ENOENT => ("ENOENT", "No such file or directory"),
        libc::ESRCH => ("ESRCH", "No such process"),
        libc::EINTR => ("EINTR", "Interrupted system call"),
        libc::EIO => ("EIO", "Input/output error"),
        libc::ENXIO => ("ENXIO", "No such device or address"),
        libc::E2BIG => ("E2BIG", "Argument list too long"),
        libc::EBADF => ("EBADF", "Bad file descriptor"),
        libc::ECHILD => ("ECHILD", "No child processes"),
        libc::EAGAIN => ("EAGAIN", "Resource temporarily unavailable"),
        libc::ENOMEM => ("ENOMEM", "Cannot allocate memory"),
        libc::EACCES => ("EACCES", "Permission denied"),
        libc::EFAULT => ("EFAULT", "Bad address"),
        libc::EBUSY => ("EBUSY", "Device or resource busy"),
        libc::EEXIST => ("EEXIST", "File exists"),
        libc::ENODEV => ("ENODEV", "No such device"),
        libc::EINVAL => ("EINVAL", "Invalid argument"),
        libc::ENFILE => ("ENFILE", "Too many open files in system"),
        libc::EMFILE => ("EMFILE", "Too many open files"),
        libc::ENOSPC => ("ENOSPC", "No space left on device"),
        libc::ERANGE => ("ERANGE", "Numerical result out of range"),
        libc::EDEADLK => ("EDEADLK", "Resource deadlock avoided"),
        libc::ENOSYS => ("ENOSYS", "Function not implemented"),
        libc::EOVERFLOW => ("EOVERFLOW", "Value too large for defined data type"),
        libc::EOPNOTSUPP => ("EOPNOTSUPP", "Operation not supported"),
        libc::ETIMEDOUT => ("ETIMEDOUT", "Connection timed out"),
        libc::EHWPOISON => ("EHWPOISON", "Memory page has hardware error"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_errno() {
        assert_eq!(
            Error::from_errno(libc::EINVAL).to_string(),
            "EINVAL (Invalid argument)"
        );
        assert_eq!(
            Error::from_errno(libc::EOPNOTSUPP).to_string(),
            "EOPNOTSUPP (Operation not supported)"
        );
        assert_eq!(
            Error::from_errno(libc::ENOSYS).to_string(),
            "ENOSYS (Function not implemented)"
        );
        assert_eq!(Error::from_errno(4095).to_string(), "errno 4095");
    }

    #[test]
    fn debug_is_short() {
        assert_eq!(
            format!("{:?}", Error::from_errno(libc::EPERM)),
            "Error(EPERM)"
        );
        assert_eq!(format!("{:?}", Error::from_errno(4095)), "Error(4095)");
    }

    #[test]
    fn accessors() {
        let err = Error::from_errno(libc::ENOSPC);
        assert_eq!(err.errno(), libc::ENOSPC);
        assert!(err.is(libc::ENOSPC));
        assert!(!err.is(libc::ENOMEM));
        assert_eq!(err.name(), Some("ENOSPC"));
        assert_eq!(err.description(), Some("No space left on device"));
        assert_eq!(Error::from_errno(4095).name(), None);
    }

    #[test]
    fn converts_to_io_error() {
        let io: io::Error = Error::from_errno(libc::EACCES).into();
        assert_eq!(io.raw_os_error(), Some(libc::EACCES));
        assert_eq!(io.kind(), io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn is_a_std_error() {
        let boxed: Box<dyn std::error::Error> = Box::new(Error::from_errno(libc::EINVAL));
        assert_eq!(boxed.to_string(), "EINVAL (Invalid argument)");
    }
}
