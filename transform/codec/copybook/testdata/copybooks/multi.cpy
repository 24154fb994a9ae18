      * Two record layouts in one copybook, and a 77 level.
       01  HEADER-REC.
           05  H-TYPE      PIC X.
           05  H-DATE      PIC 9(8).
       01  DETAIL-REC.
           05  D-TYPE      PIC X.
           05  D-ITEMS     OCCURS 2 TIMES.
               10  D-SKU   PIC X(4).
               10  D-QTY   PIC S9(3) COMP-3.
           05  FILLER      PIC XX.
       77  STANDALONE      PIC 9(4).
