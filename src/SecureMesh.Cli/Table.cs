namespace SecureMesh.Cli;

/// <summary>Plain aligned text tables for terminal output.</summary>
internal static class Table
{
    public static void Write(TextWriter output, string[] headers, IEnumerable<string[]> rows)
    {
        // Text from peers or the database never reaches the terminal with control or format characters (bidi overrides
        // among them) in it: they could rewrite the screen or make one name look like another.
        var all = rows.Select(r => r.Select(TerminalText.Safe).ToArray()).ToList();
        var widths = headers.Select(h => h.Length).ToArray();
        foreach (var row in all)
        {
            for (var i = 0; i < widths.Length && i < row.Length; i++)
            {
                widths[i] = Math.Max(widths[i], row[i].Length);
            }
        }
        WriteRow(output, headers, widths);
        foreach (var row in all)
        {
            WriteRow(output, row, widths);
        }
    }

    private static void WriteRow(TextWriter output, string[] cells, int[] widths)
    {
        var parts = new string[cells.Length];
        for (var i = 0; i < cells.Length; i++)
        {
            parts[i] = i == cells.Length - 1 ? cells[i] : cells[i].PadRight(widths[i]);
        }
        output.WriteLine(string.Join("  ", parts).TrimEnd());
    }
}
