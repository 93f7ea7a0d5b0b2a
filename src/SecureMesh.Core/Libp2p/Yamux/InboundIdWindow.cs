namespace SecureMesh.Core.Libp2p.Yamux;

/// <summary>
/// Remembers which stream IDs the peer has opened, so a reused ID is caught without keeping every ID ever seen: the
/// highest ID so far, and a bitmap of the <see cref="Span"/> IDs (of the peer's parity) below it. Peers allocate IDs in
/// order, but two streams opened at once may reach us swapped, so a lower ID is accepted once if it is recent;
/// an older one is refused as possibly reused, like an IPsec replay window.
/// </summary>
internal sealed class InboundIdWindow
{
    /// <summary>How many IDs below the highest are remembered.</summary>
    public const int Span = 256;

    private readonly ulong[] _bits = new ulong[Span / 64];
    private uint _highest;

    /// <summary>The highest ID the peer has opened (0 before the first).</summary>
    public uint Highest => _highest;

    /// <summary>Records <paramref name="id"/> as opened; false when it was opened before or is too old to tell.</summary>
    public bool TryMark(uint id)
    {
        if (id > _highest)
        {
            // Slot i remembers ID (highest - 2i); shift by the number of peer IDs skipped.
            var shift = _highest == 0 ? (ulong)Span : (id - _highest) / 2;
            ShiftLeft(shift);
            _highest = id;
            SetBit(0);
            return true;
        }
        var slot = (_highest - id) / 2;
        if (slot >= Span || IsSet((int)slot))
        {
            return false;
        }
        SetBit((int)slot);
        return true;
    }

    /// <summary>True when the peer never opened <paramref name="id"/> and has not opened anything above it either.</summary>
    public bool IsBeyondHighest(uint id) => id > _highest;

    private bool IsSet(int slot) => (_bits[slot / 64] & (1UL << (slot % 64))) != 0;

    private void SetBit(int slot) => _bits[slot / 64] |= 1UL << (slot % 64);

    private void ShiftLeft(ulong shift)
    {
        if (shift >= Span)
        {
            Array.Clear(_bits);
            return;
        }
        var words = (int)(shift / 64);
        var bits = (int)(shift % 64);
        for (var i = _bits.Length - 1; i >= 0; i--)
        {
            var source = i - words;
            var value = source >= 0 ? _bits[source] << bits : 0;
            if (bits != 0 && source - 1 >= 0)
            {
                value |= _bits[source - 1] >> (64 - bits);
            }
            _bits[i] = value;
        }
    }
}
