using SecureMesh.Core;
using SecureMesh.Core.Wire;

namespace SecureMesh.Node.Transfer;

/// <summary>A peer answered a request with an Error message.</summary>
public sealed class PeerRequestException : SecureMeshException
{
    /// <summary>
    /// Wraps the peer's error. The peer's text is cleaned and length-capped here (<see cref="UntrustedText"/>), once, so
    /// the message that is logged, stored as a download's failure and shown never carries it raw.
    /// </summary>
    public PeerRequestException(WireErrorCode code, string message)
        : base(code == WireErrorCode.NotFound ? SecureMeshErrorKind.NotFound : SecureMeshErrorKind.Protocol,
            $"peer error {(Enum.IsDefined(code) ? code.ToString() : ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture))}: {UntrustedText.Clean(message)}") =>
        Code = code;

    /// <summary>The peer's error code.</summary>
    public WireErrorCode Code { get; }
}
