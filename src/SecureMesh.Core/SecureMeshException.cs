namespace SecureMesh.Core;

/// <summary>Why an operation failed, so callers can map it to an exit code or a closed connection.</summary>
public enum SecureMeshErrorKind
{
    /// <summary>Input from the user (arguments, files) was not acceptable.</summary>
    InvalidInput,
    /// <summary>A key file or identity could not be read or used.</summary>
    Identity,
    /// <summary>A passphrase did not open a key file.</summary>
    WrongPassphrase,
    /// <summary>The remote side broke the protocol or failed authentication.</summary>
    Protocol,
    /// <summary>The local state (files, database) is unusable.</summary>
    Storage,
    /// <summary>The remote side or the user is not allowed to do this.</summary>
    Unauthorized,
    /// <summary>Something was not found.</summary>
    NotFound,
    /// <summary>Something already exists.</summary>
    Conflict,
    /// <summary>A network operation failed or timed out.</summary>
    Network,
}

/// <summary>The one exception type SecureMesh code throws on purpose. Its message is safe to show: it never holds a secret.</summary>
public class SecureMeshException : Exception
{
    /// <summary>Creates an exception with a user-facing message.</summary>
    public SecureMeshException(SecureMeshErrorKind kind, string message, Exception? inner = null)
        : base(message, inner) => Kind = kind;

    /// <summary>The category of the failure.</summary>
    public SecureMeshErrorKind Kind { get; }
}
