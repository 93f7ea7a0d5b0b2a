using System.Globalization;

namespace SecureMesh.HostilePeer;

/// <summary>What the hostile peer did and what it got back, printed as one <c>stats key=value ...</c> line.</summary>
internal sealed class HostileStats
{
    /// <summary>Protocol sessions honest nodes opened with it (hellos sent).</summary>
    public long Sessions;

    /// <summary>Chunk requests received from honest nodes.</summary>
    public long ChunkRequests;

    /// <summary>Chunk replies that were lies (all of them).</summary>
    public long Lies;

    /// <summary>Flood connections made (TCP connected).</summary>
    public long FloodConnections;

    /// <summary>Flood connection attempts that did not even connect.</summary>
    public long ConnectFailures;

    /// <summary>Flood connections the target closed within 100 ms, before any handshake (filtered or over a cap).</summary>
    public long ClosedAtOnce;

    /// <summary>Half-open and stalled-handshake connections the target cut after waiting (its handshake deadline).</summary>
    public long CutAfterWaiting;

    /// <summary>Garbage frames sent.</summary>
    public long GarbageSent;

    /// <summary>Handshakes under a fresh, unknown identity that completed.</summary>
    public long StrangerHandshakes;

    /// <summary>Messages an honest node sent to a stranger after the handshake (should stay 0: unknown peers get nothing).</summary>
    public long StrangerAnswers;

    public string Line() => string.Create(CultureInfo.InvariantCulture,
        $"stats sessions={Interlocked.Read(ref Sessions)} chunkRequests={Interlocked.Read(ref ChunkRequests)} lies={Interlocked.Read(ref Lies)} " +
        $"floodConnections={Interlocked.Read(ref FloodConnections)} connectFailures={Interlocked.Read(ref ConnectFailures)} " +
        $"closedAtOnce={Interlocked.Read(ref ClosedAtOnce)} cutAfterWaiting={Interlocked.Read(ref CutAfterWaiting)} " +
        $"garbageSent={Interlocked.Read(ref GarbageSent)} strangerHandshakes={Interlocked.Read(ref StrangerHandshakes)} " +
        $"strangerAnswers={Interlocked.Read(ref StrangerAnswers)}");
}
