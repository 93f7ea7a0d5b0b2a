using SecureMesh.Core;
using SecureMesh.Core.Wire;

namespace SecureMesh.Node.Transfer;

/// <summary>A peer answered a request with an Error message.</summary>
public sealed class PeerRequestException : SecureMeshException
{
    /// <summary>Wraps the peer's error.</summary>
    public PeerRequestException(WireErrorCode code, string message)
        : base(code == WireErrorCode.NotFound ? SecureMeshErrorKind.NotFound : SecureMeshErrorKind.Protocol, $"peer error {code}: {message}") =>
        Code = code;

    /// <summary>The peer's error code.</summary>
    public WireErrorCode Code { get; }
}
