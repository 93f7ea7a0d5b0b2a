using SecureMesh.Core;

namespace SecureMesh.Fuzz.Targets;

/// <summary>
/// Feeds arbitrary bytes to one parser. Returns true when the parser accepted the input, false when it refused it
/// the documented way (a <see cref="SecureMeshException"/> of kind Protocol, or a false return). Anything else that
/// escapes — an IndexOutOfRange, an Overflow, an OutOfMemory, a <see cref="FuzzFindingException"/> for a broken
/// promise — is a finding; so is an input that does not return in time.
/// </summary>
internal delegate bool FuzzAction(ReadOnlySpan<byte> data);

/// <summary>A fuzz target: a name for the command line, the action, and valid encodings to start from.</summary>
internal sealed record FuzzTarget(string Name, string Description, FuzzAction Run, Func<IReadOnlyList<byte[]>> Seeds);

/// <summary>Every target, by name.</summary>
internal static class FuzzTargets
{
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        FrameTarget.Target,
        MultistreamTarget.Target,
        IdentifyTarget.Target,
        HandshakeTarget.Target,
        PayloadTarget.Target,
        WireTarget.Target,
        ManifestTarget.Target,
        MultiaddrTarget.Target,
        YamuxTarget.Target,
        RelayTarget.Target,
    ];

    public static FuzzTarget? Find(string name) =>
        All.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase));

    public static FuzzTarget Get(string name) =>
        Find(name) ?? throw new ArgumentException($"no fuzz target '{name}'; known: {string.Join(", ", All.Select(t => t.Name))}", nameof(name));
}

/// <summary>A parser broke a promise without throwing: a wrong frame, a round trip that differs, a slow input.</summary>
internal sealed class FuzzFindingException(string message, Exception? inner = null) : Exception(message, inner);

internal static class Expected
{
    /// <summary>
    /// The one refusal a parser of hostile bytes may raise. A wrapped inner exception is the wire decoder's safety net
    /// turning its own bug into a protocol error ("decoder fault"): that is a finding too.
    /// </summary>
    public static bool IsProtocolError(SecureMeshException e) => e.Kind == SecureMeshErrorKind.Protocol && e.InnerException is null;

    public static FuzzFindingException Finding(string message) => new(message);
}
